# The Consul agent of compose.yaml: one server, ACLs on, default deny.
# The management token is not here: compose writes it at start, from its
# secret file, into a config file of its own (see the consul service block).

# Named in the agent token's policy (deploy/consul/acl-policies.ts, CONSUL_NODE_NAME).
node_name  = "consul"
datacenter = "dc1"

# A single server that elects itself; no dev mode, so ACLs and the tokens set
# through the API live in /consul/data like a real deployment's.
server           = true
bootstrap_expect = 1

# No peers to gossip with: keep gossip and RPC on loopback. The container sits
# on several networks, and Consul refuses to choose among private addresses.
bind_addr = "127.0.0.1"
# The HTTP API (services, consul-seed, the UI on 127.0.0.1:8500 of the host).
client_addr = "0.0.0.0"
log_level   = "warn"

ui_config {
  enabled = true
}

acl {
  enabled        = true
  # A request no rule allows is refused; the anonymous token has no policy.
  default_policy = "deny"
  # The agent token consul-seed sets with PUT /v1/agent/token/agent survives restarts.
  enable_token_persistence = true
}

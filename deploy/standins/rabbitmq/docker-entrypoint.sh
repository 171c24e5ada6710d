#!/bin/sh
# Writes the broker's configuration from the official image's variables, then
# runs the broker as the only process.
set -eu
conf=/etc/rabbitmq/rabbitmq.conf
{
  echo "listeners.tcp.default = 5672"
  echo "management.tcp.port = 15672"
  echo "log.console = true"
  echo "log.file = false"
  if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
    echo "default_user = ${RABBITMQ_DEFAULT_USER}"
    echo "default_pass = ${RABBITMQ_DEFAULT_PASS:?RABBITMQ_DEFAULT_PASS is required with RABBITMQ_DEFAULT_USER}"
    echo "default_permissions.configure = .*"
    echo "default_permissions.read = .*"
    echo "default_permissions.write = .*"
    echo "default_user_tags.administrator = true"
  fi
  # The default user may connect from other containers (the broker's own
  # default allows the built-in guest user only over loopback).
  echo "loopback_users = none"
} > "$conf"
exec "$@"

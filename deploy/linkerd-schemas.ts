/**
 * The structure of the Linkerd policy resources this repository uses, as
 * JSON Schema for Ajv. Written by hand: no npm package this project can
 * install ships Linkerd's CRD schemas (Linkerd publishes them inside its Helm
 * chart; an old @kubernetes-models/linkerd is not served by the registry
 * here, which answers 404). Transcribed from the CRDs of Linkerd's
 * policy API: Server (policy.linkerd.io/v1beta3), AuthorizationPolicy,
 * MeshTLSAuthentication and NetworkAuthentication (policy.linkerd.io/v1alpha1),
 * keeping their required fields, enums and mutual exclusions, and refusing
 * unknown fields so a misspelt key fails here rather than in the cluster.
 */
import Ajv from "ajv";

const metadata = {
  type: "object",
  required: ["name"],
  properties: { name: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 253 } },
};
const labelSelector = {
  type: "object",
  additionalProperties: false,
  properties: {
    matchLabels: { type: "object", additionalProperties: { type: "string" } },
    matchExpressions: {
      type: "array",
      items: {
        type: "object",
        required: ["key", "operator"],
        additionalProperties: false,
        properties: { key: { type: "string" }, operator: { enum: ["In", "NotIn", "Exists", "DoesNotExist"] }, values: { type: "array", items: { type: "string" } } },
      },
    },
  },
};
const resource = (apiVersion: string, kind: string, spec: object) => ({
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: { apiVersion: { const: apiVersion }, kind: { const: kind }, metadata, spec },
});
const portSpec = {
  oneOf: [
    { type: "integer", minimum: 1, maximum: 65535 },
    { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 15 },
  ],
};
const reference = {
  type: "object",
  required: ["kind", "name"],
  additionalProperties: false,
  properties: { group: { type: "string" }, kind: { type: "string", minLength: 1 }, name: { type: "string", minLength: 1 }, namespace: { type: "string" } },
};

export const LINKERD_SCHEMAS = {
  Server: resource("policy.linkerd.io/v1beta3", "Server", {
    type: "object",
    required: ["port"],
    additionalProperties: false,
    // Exactly one of podSelector and externalWorkloadSelector.
    oneOf: [{ required: ["podSelector"] }, { required: ["externalWorkloadSelector"] }],
    properties: {
      podSelector: labelSelector,
      externalWorkloadSelector: labelSelector,
      port: portSpec,
      proxyProtocol: { enum: ["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"] },
      // What the Server admits when no AuthorizationPolicy does (default deny); the default-policy values.
      accessPolicy: { enum: ["deny", "all-authenticated", "all-unauthenticated", "cluster-authenticated", "cluster-unauthenticated", "audit"] },
    },
  }),
  AuthorizationPolicy: resource("policy.linkerd.io/v1alpha1", "AuthorizationPolicy", {
    type: "object",
    required: ["targetRef", "requiredAuthenticationRefs"],
    additionalProperties: false,
    properties: {
      targetRef: {
        ...reference,
        properties: { ...reference.properties, kind: { enum: ["Namespace", "Server", "HTTPRoute", "GRPCRoute"] } },
      },
      requiredAuthenticationRefs: {
        type: "array",
        items: { ...reference, properties: { ...reference.properties, kind: { enum: ["MeshTLSAuthentication", "NetworkAuthentication", "ServiceAccount"] } } },
      },
    },
  }),
  MeshTLSAuthentication: resource("policy.linkerd.io/v1alpha1", "MeshTLSAuthentication", {
    type: "object",
    additionalProperties: false,
    // Exactly one of identities and identityRefs, not empty.
    oneOf: [{ required: ["identities"] }, { required: ["identityRefs"] }],
    properties: {
      identities: { type: "array", minItems: 1, items: { type: "string", minLength: 1 } },
      identityRefs: {
        type: "array",
        minItems: 1,
        items: {
          type: "object",
          required: ["kind"],
          additionalProperties: false,
          properties: { group: { type: "string" }, kind: { type: "string" }, name: { type: "string" }, namespace: { type: "string" } },
        },
      },
    },
  }),
  NetworkAuthentication: resource("policy.linkerd.io/v1alpha1", "NetworkAuthentication", {
    type: "object",
    required: ["networks"],
    additionalProperties: false,
    properties: {
      networks: {
        type: "array",
        minItems: 1,
        items: {
          type: "object",
          required: ["cidr"],
          additionalProperties: false,
          properties: { cidr: { type: "string", format: "cidr" }, except: { type: "array", items: { type: "string", format: "cidr" } } },
        },
      },
    },
  }),
} as const;

/**
 * What the manifests need in the cluster. Server policy.linkerd.io/v1beta3
 * (with accessPolicy) and GRPCRoute gateway.networking.k8s.io/v1 as policy
 * and outbound routes: Linkerd 2.18 or later. Linkerd 2.18 and 2.19 support
 * Gateway API CRDs 1.1.1 to 1.2.1 (Linkerd's compatibility table; 2.15-2.17
 * read GRPCRoute only as v1alpha2). The README states the same; the
 * security tests check both against the rendered objects.
 */
export const MESH_REQUIREMENTS = { linkerd: "2.18", gatewayApi: { from: "1.1.1", to: "1.2.1" } } as const;

/** The one apiVersion each rendered mesh kind must have under MESH_REQUIREMENTS. */
export const MESH_API_VERSIONS: Readonly<Record<string, string>> = {
  Server: "policy.linkerd.io/v1beta3",
  AuthorizationPolicy: "policy.linkerd.io/v1alpha1",
  MeshTLSAuthentication: "policy.linkerd.io/v1alpha1",
  NetworkAuthentication: "policy.linkerd.io/v1alpha1",
  GRPCRoute: "gateway.networking.k8s.io/v1",
  HTTPRoute: "gateway.networking.k8s.io/v1",
};

export type LinkerdKind = keyof typeof LINKERD_SCHEMAS;
export const isLinkerdKind = (kind: string): kind is LinkerdKind => kind in LINKERD_SCHEMAS;

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/;
const IPV6 = /^[0-9a-f:]+\/(12[0-8]|1[01]\d|[1-9]?\d)$/i;

/** Problems of one Linkerd object, as "Kind name: path message" lines (empty when valid). */
export function createLinkerdValidator(): (object: { kind: string; metadata?: { name?: string } }) => string[] {
  const ajv = new Ajv.default({ allErrors: true, strict: true, strictRequired: false });
  ajv.addFormat("cidr", (value: string) => IPV4.test(value) || (value.includes(":") && IPV6.test(value)));
  const validators = new Map(Object.entries(LINKERD_SCHEMAS).map(([kind, schema]) => [kind, ajv.compile(schema as object)]));
  return (object) => {
    const validate = validators.get(object.kind);
    if (!validate) return [`${object.kind} is not a Linkerd policy kind this check knows`];
    const name = object.metadata?.name ?? "?";
    const kind = object.kind;
    if (validate(object as unknown)) return [];
    return (validate.errors ?? []).map((error) => `${kind} ${name}: ${error.instancePath || "/"} ${error.message ?? "is invalid"}`);
  };
}

/**
 * The development view of the edge: the web app's mesh page (MeshService),
 * grpcurl and buf curl (reflection) and health Watch without a token. The
 * gateway's own defaults keep them off or behind a token, which is what
 * compose and Kubernetes get; `npm start` and `npm run mesh` open them
 * unless the environment says otherwise.
 */
export const DEV_EDGE_EXPOSURE: Readonly<Record<string, string>> = {
  GATEWAY_MESH_STATUS: "public",
  GATEWAY_REFLECTION: "public",
  GATEWAY_HEALTH_WATCH: "public",
};

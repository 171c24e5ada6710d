/** A server started by a bench child: where it listens, what it has served, how to stop it. */
export interface RunningServer {
  readonly port: number;
  /** Calls of the benchmarked method answered so far. */
  served(): number;
  stop(): Promise<void>;
}

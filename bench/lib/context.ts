/** What every scenario gets from the orchestrator. */

export interface BenchContext {
  /** --quick: fewer and shorter runs, smaller N. */
  quick: boolean;
  /** Runs per figure (the median of these is reported). */
  runs: number;
  /** Force a CPU profile of the service even when its goals are met. */
  profile: boolean;
  /** Progress line on stderr. */
  log(message: string): void;
}

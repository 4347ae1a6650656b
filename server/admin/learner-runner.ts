// Runs the learner in-process in the background for the admin "run now" button: one run at a
// time, its progress and outcome kept for the page to poll, and the router reloaded afterwards.
import type { Logger } from '../logger.ts';

export interface LearnerProgress {
  phase: string;
  /** 0..1 when the learner reports it. */
  fraction?: number;
  rowsRead?: number;
}

/** One learner run; resolves with a short JSON-able summary, rejects with the failure. */
export type LearnerJob = (onProgress: (p: LearnerProgress) => void) => Promise<Record<string, unknown>>;

export interface LearnerRunnerStatus {
  available: boolean;
  running: boolean;
  startedAt: number | null;
  finishedAt: number | null;
  elapsedMs: number | null;
  progress: LearnerProgress | null;
  outcome: 'ok' | 'failed' | null;
  summary: Record<string, unknown> | null;
  error: string | null;
}

export class LearnerRunner {
  private current: Promise<void> | null = null;
  private state: Omit<LearnerRunnerStatus, 'available' | 'running' | 'elapsedMs'> = {
    startedAt: null, finishedAt: null, progress: null, outcome: null, summary: null, error: null,
  };

  constructor(
    private readonly job: LearnerJob | null,
    private readonly afterRun: () => Promise<void>,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get available(): boolean {
    return this.job !== null;
  }

  /** Start a run unless one is going; false when one already is (or no learner is installed). */
  start(): boolean {
    if (!this.job || this.current) return false;
    const job = this.job;
    this.state = { startedAt: this.now(), finishedAt: null, progress: { phase: 'starting' }, outcome: null, summary: null, error: null };
    this.current = (async () => {
      try {
        const summary = await job((p) => {
          this.state.progress = p;
        });
        this.state.summary = summary;
        this.state.outcome = 'ok';
        this.state.progress = { phase: 'reloading router' };
        await this.afterRun();
        this.logger.info('admin: learner run finished', { summary });
      } catch (e) {
        this.state.outcome = 'failed';
        this.state.error = e instanceof Error ? e.message : String(e);
        this.logger.warn('admin: learner run failed', { err: this.state.error });
      } finally {
        this.state.finishedAt = this.now();
        this.state.progress = null;
        this.current = null;
      }
    })();
    return true;
  }

  status(): LearnerRunnerStatus {
    const running = this.current !== null;
    const { startedAt, finishedAt } = this.state;
    return {
      available: this.available,
      running,
      ...this.state,
      elapsedMs: startedAt === null ? null : (running ? this.now() : finishedAt ?? this.now()) - startedAt,
    };
  }

  /** Resolves when no run is going (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.current) await this.current;
  }
}

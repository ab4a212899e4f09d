/** Majority quorum over the voting members (observers never count). */
export class QuorumVerifier {
  readonly voters: ReadonlySet<number>;
  readonly observers: ReadonlySet<number>;
  readonly size: number;

  constructor(voters: readonly number[], observers: readonly number[]) {
    if (voters.length === 0) throw new Error('an ensemble needs at least one voting member');
    for (const o of observers) if (voters.includes(o)) throw new Error(`member ${o} cannot be both voter and observer`);
    this.voters = new Set(voters);
    this.observers = new Set(observers);
    this.size = Math.floor(voters.length / 2) + 1;
  }

  isVoter(id: number): boolean {
    return this.voters.has(id);
  }

  isMember(id: number): boolean {
    return this.voters.has(id) || this.observers.has(id);
  }

  /** True when the voters among `ids` form a majority. */
  hasQuorum(ids: Iterable<number>): boolean {
    let n = 0;
    for (const id of ids) if (this.voters.has(id)) n++;
    return n >= this.size;
  }

  /** Every member id, voters first. */
  all(): number[] {
    return [...this.voters, ...this.observers];
  }
}

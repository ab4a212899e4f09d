import type { Session } from '../session.js';
import type { SessionState } from '../types.js';
import { isConnected } from './util.js';

/** Curator's ConnectionState (plus CLOSED, which Curator reports by closing the client). */
export type ConnectionState = SessionState;

/**
 * A connection-state listener: called with the new state and the previous one, in order, for
 * every transition of the session (CONNECTED / SUSPENDED / RECONNECTED / LOST / READ_ONLY /
 * CLOSED). `isConnected` tells whether the session can read and write in the new state.
 */
export type ConnectionStateListener = (state: ConnectionState, info: { previous: ConnectionState; isConnected: boolean; session: Session }) => void;

/**
 * Subscribes `listener` to the session's state changes; returns the function that unsubscribes.
 * With `{ initial: true }` the listener is first called with the current state (previous = the same).
 * A listener that throws does not stop the others (the error is rethrown asynchronously).
 */
export function addConnectionStateListener(session: Session, listener: ConnectionStateListener, options: { initial?: boolean } = {}): () => void {
  let previous: ConnectionState = session.state;
  const call = (state: ConnectionState, prev: ConnectionState): void => {
    try {
      listener(state, { previous: prev, isConnected: isConnected(state), session });
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  };
  const onState = (state: SessionState): void => {
    const prev = previous;
    previous = state;
    call(state, prev);
  };
  session.on('state', onState);
  if (options.initial) call(previous, previous);
  return () => {
    session.off('state', onState);
  };
}

/**
 * Tracks a session's connection state for a recipe: the current state, a generation number that
 * changes whenever the connection is interrupted (so an async step can tell that what it read
 * before an `await` may be stale), and listeners.
 */
export class ConnectionWatch {
  /** Bumped on every SUSPENDED / LOST / CLOSED / READ_ONLY. */
  generation = 0;
  private readonly remove: () => void;

  constructor(readonly session: Session, onChange: (state: ConnectionState, previous: ConnectionState) => void) {
    this.remove = addConnectionStateListener(session, (state, info) => {
      if (!isConnected(state)) this.generation++;
      onChange(state, info.previous);
    });
  }

  get connected(): boolean {
    return isConnected(this.session.state);
  }

  close(): void {
    this.remove();
  }
}

const generations = new WeakMap<Session, { n: number }>();

/**
 * A counter of the session's connection interruptions (SUSPENDED, LOST, CLOSED, READ_ONLY). A
 * decision taken from reads is only valid if the counter did not move between the reads and the
 * decision — the guard against reconnect races (Curator's double-leader bugs). One listener per
 * session, shared by every recipe on it.
 */
export function connectionGeneration(session: Session): number {
  let g = generations.get(session);
  if (!g) {
    const counter = { n: 0 };
    g = counter;
    generations.set(session, counter);
    session.on('state', (s) => {
      if (!isConnected(s)) counter.n++;
    });
  }
  return g.n;
}

/**
 * A fault-injecting driver wrapper: at chosen calls, a method throws synchronously, rejects, or
 * hangs (never answers: either without calling the driver, or calling it and never passing its
 * answer on, as a connection that dies after the request left would).
 */
import type { Driver } from '../../scripts/fleet/driver.ts';

export const METHODS = ['inventory', 'preflight', 'liveMigrate', 'abort', 'coldMigrate', 'recover', 'fence', 'locate', 'close'] as const;
export type MethodName = (typeof METHODS)[number];
export const FAULTS = ['throw', 'reject', 'hang', 'hang-after-call'] as const;
export type Fault = (typeof FAULTS)[number];

export interface FaultPlan {
  /** Decide, for the n-th call (from 1) of a method, which fault if any. */
  at(method: MethodName, n: number): Fault | undefined;
}

export interface Injected {
  method: MethodName;
  n: number;
  fault: Fault;
}

/** The driver with faults injected where the plan says; injected lists what was done. */
export function faulty(inner: Driver, plan: FaultPlan): { driver: Driver; injected: Injected[] } {
  const injected: Injected[] = [];
  const calls = new Map<MethodName, number>();
  const wrap = <A extends unknown[], R>(method: MethodName, fn: (...a: A) => Promise<R>) => (...args: A): Promise<R> => {
    const n = (calls.get(method) ?? 0) + 1;
    calls.set(method, n);
    const fault = plan.at(method, n);
    if (!fault) return fn(...args);
    injected.push({ method, n, fault });
    switch (fault) {
      case 'throw':
        throw new Error(`injected: ${method} #${n} throws`);
      case 'reject':
        return Promise.reject(new Error(`injected: ${method} #${n} rejects`));
      case 'hang':
        return new Promise<R>(() => {});
      case 'hang-after-call':
        void fn(...args).catch(() => {});
        return new Promise<R>(() => {});
    }
  };
  const d = inner;
  const driver: Driver = {
    name: d.name,
    clock: d.clock,
    inventory: wrap('inventory', () => d.inventory()),
    preflight: wrap('preflight', (items) => d.preflight(items)),
    liveMigrate: wrap('liveMigrate', (r) => d.liveMigrate(r)),
    abort: wrap('abort', (vm) => d.abort(vm)),
    coldMigrate: wrap('coldMigrate', (r) => d.coldMigrate(r)),
    recover: wrap('recover', (r) => d.recover(r)),
    fence: wrap('fence', (h, f, force) => d.fence(h, f, force)),
    locate: wrap('locate', (vm, hosts) => d.locate(vm, hosts)),
    close: wrap('close', () => d.close()),
  };
  return { driver, injected };
}

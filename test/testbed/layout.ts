/**
 * Where the testbed lives: names, addresses and folders, in one place, so that `up`, `down`,
 * `status` and the tests agree. Everything the testbed makes carries the `evtb` prefix.
 */
import { join } from 'node:path';

export const PREFIX = 'evtb';
export const BRIDGE = `${PREFIX}0`;
/** A small private /24 used only by the testbed; the controller is .1 on the bridge. */
export const SUBNET = '10.251.7';
export const CONTROLLER = `${SUBNET}.1`;
/** State folder (not under /var or /etc, which the hosts overlay). */
export const DIR = process.env.EVAC_TESTBED_DIR ?? '/tmp/evacuator-testbed';

export interface TestbedHost {
  name: string;
  address: string;
  netns: string;
  /** Root-side end of the host's veth pair. */
  veth: string;
  dir: string;
}

export function hostAt(i: number): TestbedHost {
  const name = `hv${i + 1}`;
  return { name, address: `${SUBNET}.${11 + i}`, netns: `${PREFIX}-${name}`, veth: `${PREFIX}-${name}`, dir: join(DIR, 'hosts', name) };
}

export const paths = {
  fleet: join(DIR, 'fleet'),
  guest: join(DIR, 'guest'),
  hosts: join(DIR, 'fleet', 'hosts'),
  knownHosts: join(DIR, 'fleet', 'known_hosts'),
  controllerKey: join(DIR, 'fleet', 'controller_key'),
  sshConfig: join(DIR, 'fleet', 'ssh_config'),
  state: join(DIR, 'state.json'),
};

/**
 * npm run bench:openstack — Nova at hundreds of servers (root; the packages .ci/run installs):
 * builds a scale test cloud (6 computes on Nova's fake driver, 200 servers, cmp1 and cmp2 holding
 * 65 each), then empties cmp1 with the per-server loop (each migration reads its own server and
 * migration record every poll, as `nova host-evacuate-live` and a shell loop do) and cmp2 with the
 * listing poller, both onto cmp3..cmp6 with 8 live migrations at once, in the same run and cloud.
 * Prints API calls per migration, wall time per migration and Nova's own time per migration (its
 * record's updated_at - created_at). Asserts nothing. Takes the cloud down at the end.
 */
import { down, up } from '../../test/cloud/cloud.ts';
import { scaleShape } from '../../test/cloud/config.ts';
import { evacuateAtScale, summary } from '../../test/cloud/scale.ts';

const DESTINATIONS = ['cmp3', 'cmp4', 'cmp5', 'cmp6'];
const perSource = Number(process.env.EVAC_BENCH_PER_SOURCE ?? 8);

try {
  const t0 = Date.now();
  await up(scaleShape(6, 200));
  console.log(`## scale cloud up in ${((Date.now() - t0) / 1000).toFixed(0)} s: 6 computes, 200 servers, 20 a page; ${perSource} live migrations at once; budget 20 requests/s`);
  const baseline = await evacuateAtScale({ name: 'bench-per-server', sources: ['cmp1'], destinations: DESTINATIONS, polling: 'per-server', perSource });
  console.log(`per-server loop, cmp1 (65):\n  ${summary(baseline)}\n  top routes: ${JSON.stringify(Object.fromEntries(Object.entries(baseline.requests.routes).slice(0, 6)))}`);
  const listing = await evacuateAtScale({ name: 'bench-listing', sources: ['cmp2'], destinations: DESTINATIONS, polling: 'list', perSource });
  console.log(`listing poller, cmp2 (65):\n  ${summary(listing)}\n  top routes: ${JSON.stringify(Object.fromEntries(Object.entries(listing.requests.routes).slice(0, 6)))}`);
  const per = (r: typeof listing) => r.requests.total / Math.max(1, r.moved);
  console.log(`API calls per migration: per-server ${per(baseline).toFixed(2)}, listing ${per(listing).toFixed(2)} (x${(per(baseline) / per(listing)).toFixed(1)} fewer)`);
} finally {
  await down();
}

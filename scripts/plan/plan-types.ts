/* Generated from schemas/plan.schema.json by 'npm run gen:types'. Do not edit: edit the schema. */

/**
 * A host or VM name: 1 to 253 characters, none of them a control character (C0, DEL, C1), a bidi control or a line separator, which would let a name rewrite a terminal, a CI log or a report.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "Name".
 */
export type Name = string;
/**
 * A command as its argument list: the program, then each argument (no shell: a value is never read as shell syntax). The environment gives it EVAC_HOST (the host's name), EVAC_HOST_ADDRESS (its address, libvirt), EVAC_PLAN and EVAC_WAVE (1-based); a hook of the whole roll gets EVAC_HOSTS (space-separated).
 *
 * @minItems 1
 * @maxItems 1000
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "Command".
 */
export type Command = [string, ...string[]];
/**
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "Limit".
 */
export type Limit = number | "auto";

/**
 * An evacuator plan: which hosts to empty, where their VMs may go, how to place them and how to migrate them.
 */
export interface EvacuationPlan {
  /**
   * Plan format version. Only 1 exists.
   */
  version: 1;
  /**
   * Plan name; reports are written to reports/<name>.json and .html.
   */
  name: string;
  /**
   * Free text for the change record.
   */
  description?: string;
  /**
   * evacuate (the default): empty the sources. rebalance: move as few bytes as possible so that the hosts in scope (destinations) reach the target in rebalance. rolling: maintain the sources (and rolling.selector's hosts) in waves: empty a wave, run the maintenance step on each of its hosts, check them, put them back in service, then the next wave (section rolling).
   */
  kind?: "evacuate" | "rebalance" | "rolling";
  fleet: Fleet;
  /**
   * Hosts to empty (under maintenance). Required for kind evacuate; a rebalance has none (its scope is destinations); a rolling plan's hosts to maintain are these and the hosts rolling.selector matches.
   *
   * @minItems 1
   */
  sources?: [Name, ...Name[]];
  /**
   * Move only these VMs (names or globs: * any run of characters, ? one, a backslash takes the next character as itself) from the sources; a pattern that selects no VM on the sources is refused; the others stay and are reported as not selected. The sources then count as done when every selected VM has left them (a plan from `evacuator moveback` uses this).
   *
   * @minItems 1
   */
  vms?: [string, ...string[]];
  destinations?: Destinations;
  rebalance?: Rebalance;
  rolling?: Rolling;
  placement?: Placement;
  migration?: Migration;
}
/**
 * Where the hosts and VMs are discovered.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "Fleet".
 */
export interface Fleet {
  /**
   * Fleet driver. sim is an embedded simulated fleet; libvirt drives virsh on each host over SSH; openstack drives Nova's REST API.
   */
  driver: "sim" | "libvirt" | "openstack";
  sim?: SimFleet;
  libvirt?: LibvirtFleet;
  openstack?: OpenStackFleet;
}
/**
 * The embedded simulated fleet: given inline (hosts, vms) or generated from a seed.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "SimFleet".
 */
export interface SimFleet {
  /**
   * Seed for generated fleets.
   */
  seed?: number;
  /**
   * Default NIC bandwidth per host and direction, MiB/s (10 GbE ~ 1190).
   */
  nic_mibps?: number;
  /**
   * Most one migration stream can carry, MiB/s (QEMU's single-stream ceiling).
   */
  stream_mibps?: number;
  /**
   * Where the simulated fleet keeps its state, so it outlives a run (as a real fleet does): loaded when the file exists, written after every change. Without it, each run starts from the fleet given here and keeps its state in <reports>/<plan name>.fleet.json for `run --resume`, `clear` and `moveback`. Plans naming the same file share one simulated fleet.
   */
  state_file?: string;
  hosts?: SimHost[];
  vms?: SimVm[];
  generate?: SimGenerate;
  faults?: SimFault[];
}
/**
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "SimHost".
 */
export interface SimHost {
  name: Name;
  /**
   * Physical CPU threads.
   */
  vcpu: number;
  memory_mib: number;
  /**
   * Local disk for instance files.
   */
  disk_gib: number;
  resources?: ResourceNumbers;
  /**
   * libvirt CPU model name, e.g. Cascadelake-Server.
   */
  cpu_model?: string;
  /**
   * QEMU version, e.g. 8.2.0.
   */
  hypervisor_version?: string;
  labels?: Labels;
  /**
   * NIC bandwidth of this host per direction, MiB/s. @default fleet.sim.nic_mibps
   */
  nic_mibps?: number;
}
/**
 * A number per resource: vcpu, memory_mib, disk_gib or any named resource (gpu, sriov_vf, ...).
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "ResourceNumbers".
 */
export interface ResourceNumbers {
  [k: string]: number;
}
/**
 * Host labels, key: value.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "Labels".
 */
export interface Labels {
  [k: string]: string;
}
/**
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "SimVm".
 */
export interface SimVm {
  name: Name;
  /**
   * A host or VM name: 1 to 253 characters, none of them a control character (C0, DEL, C1), a bidi control or a line separator, which would let a name rewrite a terminal, a CI log or a report.
   */
  host: string;
  vcpu: number;
  memory_mib: number;
  disk_gib?: number;
  resources?: ResourceNumbers;
  /**
   * shared: disks on shared storage; local: disks on the host, copied when migrating.
   */
  storage?: "shared" | "local";
  /**
   * running and paused move live; shutoff moves cold and stays off; suspended and crashed are left where they are, with the reason.
   */
  state?: "running" | "paused" | "shutoff" | "suspended" | "crashed";
  /**
   * Guest CPU model; defaults to the host's.
   */
  cpu_model?: string;
  /**
   * Non-zero memory that a migration must send; defaults to memory_mib.
   */
  resident_mib?: number;
  /**
   * Rate at which the guest dirties memory, MiB/s.
   */
  dirty_mibps?: number;
  /**
   * Anti-affinity group: no two members on one host.
   */
  anti_affinity?: string;
  /**
   * Affinity group: all members on one host.
   */
  affinity?: string;
  /**
   * The guest ignores an ACPI shutdown request.
   */
  ignores_shutdown?: boolean;
}
/**
 * Generate a fleet: hosts hv-001.. with VMs vm-00001.., from the seed.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "SimGenerate".
 */
export interface SimGenerate {
  hosts: number;
  vms: number;
  /**
   * @minItems 1
   */
  cpu_models?: [string, ...string[]];
  /**
   * Share of VMs with local disks.
   */
  local_storage_share?: number;
  anti_affinity_groups?: number;
}
/**
 * A failure to inject into the simulated fleet.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "SimFault".
 */
export interface SimFault {
  /**
   * unreachable: the host does not answer at all; crash: the host dies at at_s seconds into the run; migration_error: every migration of vm fails with an error.
   */
  kind: "unreachable" | "crash" | "migration_error";
  host?: Name;
  vm?: Name;
  at_s?: number;
}
/**
 * Hosts running libvirtd, reached over SSH (strict host-key checking). Secrets never go here: keys come from identity files, an agent (SSH_AUTH_SOCK) or ~/.ssh.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "LibvirtFleet".
 */
export interface LibvirtFleet {
  /**
   * @minItems 1
   */
  hosts: [LibvirtHost, ...LibvirtHost[]];
  /**
   * SSH user on every host.
   */
  user?: string;
  /**
   * Private key files to try. @default ~/.ssh/id_ed25519, id_ecdsa, id_rsa
   */
  identity_files?: string[];
  /**
   * known_hosts file checked strictly. @default ~/.ssh/known_hosts
   */
  known_hosts?: string;
  /**
   * SSH connection timeout.
   */
  connect_timeout_s?: number;
}
/**
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "LibvirtHost".
 */
export interface LibvirtHost {
  /**
   * Host name as known_hosts and the other hosts know it (peer-to-peer migration connects to qemu+ssh://NAME/system): a DNS name, letters, digits, '-' and '.'.
   */
  name: string;
  /**
   * Address the controller connects to: a host name or an IPv4/IPv6 address (no shell syntax, no user@, no port: the port has its own field). @default the name
   */
  address?: string;
  port?: number;
  labels?: Labels;
}
/**
 * An OpenStack cloud, driven through Nova's REST API (and Placement's). Credentials never go here: they come from clouds.yaml (cloud names the entry) or, without cloud, from the OS_* environment variables.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "OpenStackFleet".
 */
export interface OpenStackFleet {
  /**
   * Entry of clouds.yaml to use (looked for in clouds_file, $OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml).
   */
  cloud?: string;
  /**
   * A clouds.yaml to read first.
   */
  clouds_file?: string;
  /**
   * Longest wait for one API request.
   */
  request_timeout_s?: number;
  /**
   * The driver's request budget: at most this many API requests (keystone, Nova, placement; retries and pages included) per second on average, with bursts of as many; requests beyond it wait their turn. At least 0.1 (one request every 10 s). Waits on migrations poll Nova by listing (os-migrations and servers changed since the last poll, once per second for every migration in flight), so the budget does not grow with the number of migrations.
   */
  requests_per_second?: number;
  /**
   * Force a live migration still running after this long to complete (Nova pauses the guest to finish, or switches to post-copy where enabled). Without it, the deadline aborts it instead.
   */
  force_complete_after_s?: number;
}
/**
 * Where VMs may go. With neither hosts nor selector, every host that is not a source.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "Destinations".
 */
export interface Destinations {
  hosts?: Name[];
  selector?: Labels1;
  exclude?: Name[];
}
/**
 * Host labels, key: value.
 */
export interface Labels1 {
  [k: string]: string;
}
/**
 * A load-rebalancing run: the target to reach and the budget to reach it within. Planning picks the moves that reach the target with the fewest bytes moved (memory, plus disk where storage is local), honouring every placement rule; moves run in an order in which no host is ever over its capacity.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "Rebalance".
 */
export interface Rebalance {
  target: {
    /**
     * A ceiling per resource, as a fraction of capacity x overcommit, e.g. {memory_mib: 0.75}.
     */
    max_utilization?: {
      [k: string]: number;
    };
    /**
     * At most this far above the mean utilization of the hosts in scope, per resource, e.g. {memory_mib: 0.05}: as even as that.
     */
    max_spread?: {
      [k: string]: number;
    };
    /**
     * Empty this many hosts (so they can be powered down), choosing those that cost the fewest bytes.
     */
    free_hosts?: number;
  };
  budget?: {
    /**
     * At most this many migrations.
     */
    migrations?: number;
    /**
     * At most this many GiB moved.
     */
    gib?: number;
  };
}
/**
 * A rolling maintenance (kind: rolling): the hosts to maintain (sources, and selector's) go through in waves; each wave is proven to fit on the rest, emptied (the same evacuation as run), maintained (step), checked, and put back in service before the next; VMs go to hosts already maintained (or outside the roll) whenever room allows, so that each moves once.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "Rolling".
 */
export interface Rolling {
  selector?: Labels2;
  /**
   * Hosts maintained at once: a number (refused, with the reason, when a wave of that size cannot be emptied onto the rest or would put two hosts of one failure domain or two holders of one anti-affinity group together), or auto: the largest size for which every wave holds (at most max_wave).
   */
  wave?: number | "auto";
  /**
   * With wave: auto, the largest wave allowed.
   */
  max_wave?: number;
  /**
   * A host label (for example rack): never two hosts with the same value of it in one wave.
   */
  failure_domain?: string;
  /**
   * Which hosts go first: least-loaded (the default: the fewest VMs to move first, so that the VMs that must land on hosts not yet maintained are few), or listed (the order of sources, then the selector's hosts by name).
   */
  order?: "least-loaded" | "listed";
  maintenance?: MaintenanceStep;
  checks?: RollChecks;
  /**
   * Commands around the roll and around each host (silence alerts, set Ceph noout, turn HA off and on). A failing before_roll or before_host stops before anything of the roll or of that host changed; a failing after_* is said (a warning).
   */
  hooks?: {
    before_roll?: Command;
    after_roll?: Command;
    before_host?: Command;
    after_host?: Command;
    /**
     * How long a hook may run before it is killed (and counts as failed).
     */
    timeout_s?: number;
  };
  /**
   * When a host's evacuation leaves VMs on it, its maintenance step fails or its checks do not pass: stop (the default) ends the roll there, the host stays fenced; skip leaves that host fenced and goes on with the others.
   */
  on_failure?: "stop" | "skip";
  /**
   * A host that holds VMs which must not move (placement.pinned): skip-host (the default) leaves that host out of the roll, with the reason; shutdown-restart empties it of every other VM, shuts those VMs down cleanly where they are (migration.cold: shutdown_timeout_s, force_off) just before its maintenance step, and starts them again on the same host once it passes its checks (a host that fails its step or checks gets them started again too when it answers). A pinned VM that will not shut down keeps running, and its host is not maintained.
   */
  pinned?: "skip-host" | "shutdown-restart";
  /**
   * stay (the default): VMs stay where they landed (each moved once where room allows). origin: after the roll, every VM that moved goes back to the host it started on (what peers do; twice the moves).
   */
  return?: "stay" | "origin";
  /**
   * Names of environment variables whose values are masked (***) in every output of the steps and hooks the journal and the report keep.
   *
   * @maxItems 1000
   */
  secret_env?: string[];
}
/**
 * Host labels, key: value.
 */
export interface Labels2 {
  [k: string]: string;
}
/**
 * What maintains a host once it is empty: a command run on this machine (the host's name and address in its environment) or on the host over the libvirt driver's SSH (on: host), or on the simulated fleet a simulated step.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "MaintenanceStep".
 */
export interface MaintenanceStep {
  command?: Command;
  /**
   * local (the default): run the command on this machine, the host's name and address in its environment. host: run it on the host itself over the libvirt driver's SSH (the same strict host keys), as `timeout` TIMEOUT `env` EVAC_...=... COMMAND: each argument quoted, never pasted into a shell string; a second interrupt does not stop it there (it runs to its timeout).
   */
  on?: "local" | "host";
  /**
   * How long the step may run before it is killed and counts as failed.
   */
  timeout_s?: number;
  /**
   * Simulated fleet only: the host goes down for duration_s (virtual time) and comes back with hypervisor_version; hosts listed in fail do not come back.
   */
  simulate?: {
    duration_s?: number;
    hypervisor_version?: string;
    /**
     * @maxItems 100000
     */
    fail?: Name[];
  };
}
/**
 * What a maintained host must show before it takes VMs again: it answers, its hypervisor answers, its capacity and CPU model are as before, and the optional version and command.
 *
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "RollChecks".
 */
export interface RollChecks {
  /**
   * How long to wait for the host to come back and pass.
   */
  timeout_s?: number;
  /**
   * How often to look.
   */
  interval_s?: number;
  /**
   * The version the hypervisor must report afterwards (the patch landed).
   */
  hypervisor_version?: string;
  command?: Command;
}
/**
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "Placement".
 */
export interface Placement {
  /**
   * pack: give the VMs to the fewest destination hosts (receiving hosts: those that get at least one VM, whether they already run VMs or were empty; a host that gets none, busy or empty, is left as it is); spread: the lowest highest utilization.
   */
  policy?: "pack" | "spread";
  /**
   * Destinations filled first: a VM goes to another destination only when these cannot take it under every rule (a rolling plan prefers the hosts already maintained, so that a VM moves once).
   *
   * @maxItems 100000
   */
  prefer?: Name[];
  /**
   * Seed for tie-breaking; the same plan and fleet give the same placement.
   */
  seed?: number;
  /**
   * Work the placement search may spend after its first pass, in unit-host pairs weighed: more packs tighter and takes longer (the default is under a second on a small machine); 0 keeps the first pass. Counted, not timed, so the same plan always gives the same placement.
   */
  effort?: number;
  overcommit?: ResourceNumbers1;
  reserve?: ResourceNumbers2;
  /**
   * Highest share of (overcommitted) capacity a destination may reach after the moves.
   */
  max_utilization?: number;
  /**
   * VMs that stay where they are.
   */
  pinned?: Name[];
  /**
   * VMs that must go to a named destination (VM name: host name); a VM whose host has no room, or fails, is left with the reason instead of going elsewhere.
   */
  assign?: {
    [k: string]: Name;
  };
  /**
   * Extra affinity / anti-affinity groups, besides those the fleet declares.
   */
  groups?: {
    name: string;
    policy: "anti-affinity" | "affinity";
    /**
     * @minItems 2
     */
    members: [Name, Name, ...Name[]];
  }[];
}
/**
 * A number per resource: vcpu, memory_mib, disk_gib or any named resource (gpu, sriov_vf, ...).
 */
export interface ResourceNumbers1 {
  [k: string]: number;
}
/**
 * A number per resource: vcpu, memory_mib, disk_gib or any named resource (gpu, sriov_vf, ...).
 */
export interface ResourceNumbers2 {
  [k: string]: number;
}
/**
 * This interface was referenced by `EvacuationPlan`'s JSON-Schema
 * via the `definition` "Migration".
 */
export interface Migration {
  /**
   * live: live only; cold: shut down, copy, start; live-then-cold: live, cold where live fails and the VM may be shut down.
   */
  mode?: "live" | "cold" | "live-then-cold";
  /**
   * When the maintenance window closes, as an ISO 8601 date-time with its offset (2026-11-28T06:00:00+01:00). No migration starts whose estimated end passes it; the VMs it would have moved are left and reported.
   */
  window_end?: string;
  /**
   * How many migrations run at once. auto (each limit's default) derives them from the link model: per source and per destination as many streams as fill the host's NIC (NIC / per-stream ceiling: 2 on 10 GbE; on OpenStack 1 per source, Nova's own per-compute default), fleet-wide the sum over the sources; and a migration does not start on a link whose share would fall below the dirty rate of a guest migrating on it (it would not converge). A number sets that limit as given.
   */
  concurrency?: {
    /**
     * Migrations at once, fleet-wide: a number, or auto.
     */
    total?: number | "auto";
    /**
     * Outbound migrations per source host: a number, or auto.
     */
    per_source?: number | "auto";
    /**
     * Inbound migrations per destination host: a number, or auto.
     */
    per_destination?: number | "auto";
  };
  /**
   * Live-migration deadline per GiB of memory (plus local disk); then abort (Nova: 800).
   */
  completion_timeout_s_per_gib?: number;
  /**
   * Longest pause allowed for the switch-over.
   */
  max_downtime_ms?: number;
  /**
   * Switch a live migration to post-copy after the first pre-copy pass (libvirt --postcopy --postcopy-after-precopy): it always converges, but from the switch on the guest's memory lives on both hosts, so a network failure before it ends loses the guest, and it cannot be aborted. Off unless you accept that. The sim driver does not model it.
   */
  post_copy?: boolean;
  /**
   * Throttle a guest's vCPUs while it dirties memory faster than the link sends it, so that live migration converges (libvirt --auto-converge). The sim driver does not model it.
   */
  auto_converge?: boolean;
  /**
   * Cap per migration, MiB/s; absent = no cap.
   */
  bandwidth_mibps?: number;
  cold?: {
    /**
     * VMs that may be shut down for a cold migration: names or glob patterns (web-*). Empty: none.
     */
    allow?: string[];
    /**
     * Wait this long for a graceful shutdown.
     */
    shutdown_timeout_s?: number;
    /**
     * Power a guest off when it ignores shutdown.
     */
    force_off?: boolean;
  };
}

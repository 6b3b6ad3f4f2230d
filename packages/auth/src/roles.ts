import {
  BUCKETS,
  OBJECT_STORES,
  STREAMS,
  subjects,
  wildcards,
  ErrorCode,
  StackbusError,
  validateName,
} from "@stackbus/protocol";

/** The fixed roles of a lab; each host also gets its own `agent-<host>` role. */
export const SERVICE_ROLES = ["coordinator", "config", "fetcher", "operator", "watcher"] as const;
export type ServiceRole = (typeof SERVICE_ROLES)[number];

/** One NATS identity: a service, the operator's CLI, a read-only watcher, or one host's agent. */
export type Role = ServiceRole | `agent-${string}`;

/** The role of the agent of `host`. */
export function agentRole(host: string): `agent-${string}` {
  return `agent-${validateName("host", host)}`;
}

/** Allow and deny lists of one direction, as nats-server takes them. */
export interface SubjectRules {
  allow: string[];
  deny: string[];
}

/**
 * What one identity may do on the bus. `allowResponses` lets a responder answer the requests
 * it receives without any publish right on other users' inboxes.
 */
export interface RolePermissions {
  publish: SubjectRules;
  subscribe: SubjectRules;
  allowResponses: boolean;
}

const JS = "$JS.API";

/**
 * Following one stream with ordered or pull consumers: stream info, consumer creation only
 * through the filtered create subject (`CONSUMER.CREATE.<stream>.<name>.<filter>`, the
 * filter restricted to `filter`; the server refuses a body whose filter differs), consumer
 * info, pulls, deletion and flow-control replies. The legacy `CONSUMER.CREATE.<stream>`
 * (any filter in the body) and `CONSUMER.DURABLE.CREATE` subjects are not allowed.
 *
 * nats-server 2.9 does not check where a consumer delivers (a push consumer's
 * `deliver_subject`, a pull's reply subject): whoever may create one can have the stream's
 * messages delivered on any subject. So roles get consumers only on streams whose content
 * they cannot write (see `rolePermissions`), and agents check who sent a command.
 */
function consumeStream(stream: string, filter: string): string[] {
  return [
    `${JS}.STREAM.INFO.${stream}`,
    `${JS}.CONSUMER.CREATE.${stream}.*.${filter}`,
    `${JS}.CONSUMER.INFO.${stream}.*`,
    `${JS}.CONSUMER.MSG.NEXT.${stream}.*`,
    `${JS}.CONSUMER.DELETE.${stream}.*`,
    `$JS.FC.${stream}.>`,
  ];
}

/**
 * Reading single stored messages of one stream (KV and object-store gets). `direct` adds
 * the direct-get subjects, whose reply is the stored message itself: like a consumer, a
 * direct get answers on any reply subject the asker names, so it too is given only for
 * streams the role cannot write. A stream-message get's reply is a JSON envelope.
 */
function getMessages(stream: string, direct: boolean): string[] {
  return [
    `${JS}.STREAM.INFO.${stream}`,
    `${JS}.STREAM.MSG.GET.${stream}`,
    ...(direct ? [`${JS}.DIRECT.GET.${stream}`, `${JS}.DIRECT.GET.${stream}.>`] : []),
  ];
}

/** Owning a stream (services only): create, update its limits, purge, and read it every way. */
function ownStream(stream: string): string[] {
  return [
    ...consumeStream(stream, ">"),
    ...getMessages(stream, true),
    `${JS}.STREAM.CREATE.${stream}`,
    `${JS}.STREAM.UPDATE.${stream}`,
    `${JS}.STREAM.PURGE.${stream}`,
  ];
}

/**
 * Denied to every role but the services, whatever its allow list says: creating, changing,
 * purging or deleting streams and buckets, and durable consumers.
 */
const NO_STREAM_ADMIN = [
  `${JS}.STREAM.CREATE.>`,
  `${JS}.STREAM.UPDATE.>`,
  `${JS}.STREAM.DELETE.>`,
  `${JS}.STREAM.PURGE.>`,
  `${JS}.CONSUMER.DURABLE.CREATE.>`,
];

const kvStream = (bucket: string) => `KV_${bucket}`;
const objStream = (bucket: string) => `OBJ_${bucket}`;

/** What every role's rules are built from: the lab, its hosts, and the subjects they share. */
interface RoleContext {
  lab: string;
  hosts: readonly string[];
  labRoot: string;
  common: (role: Role) => { pub: string[]; sub: string[] };
  configGetOf: (host: string) => string;
  everyConfigGet: string;
  pluginSettings: string;
  /** Reading runs and logs, as `stackbus watch`/`runs` do: following the streams, and the run records. */
  readRuns: string[];
  watchSubjects: string[];
}

/**
 * The permissions of every role of one lab: least privilege, built from the subjects in
 * @stackbus/protocol. `inbox` is each identity's reply-inbox prefix (`_INBOX.<identity>`).
 *
 * Services subscribe to the protocol's all-lab wildcards (that is what they listen on);
 * everything they publish, and everything agents, the operator and watchers do, is
 * restricted to this lab, and each agent to its own host.
 *
 * Only the services create or change streams, buckets and object stores (each creates its
 * own at start: coordinator SB_RUNS, SB_LOGS, sb_runs; config sb_labs, sb_agents; fetcher
 * sb_plugins, sb_plugin_index), so no other role can shape one to capture messages. A role
 * may create consumers, or direct-get, only on streams whose content it cannot write: an
 * agent writes its registration in sb_agents and reads it back only through the
 * stream-message get (a JSON envelope), and consumes only the plugin object store's chunks.
 */
export function rolePermissions(lab: string, hosts: readonly string[], inbox: (role: Role) => string): Map<Role, RolePermissions> {
  validateName("lab", lab);
  for (const h of hosts) validateName("host", h);
  const labRoot = `sb.${lab}`;
  const ctx: RoleContext = {
    lab,
    hosts,
    labRoot,
    common: (role) => ({ pub: [`${JS}.INFO`], sub: [`${inbox(role)}.>`] }),
    configGetOf: (h) => subjects.configGet(lab, h),
    everyConfigGet: `${labRoot}.config.get.*`,
    pluginSettings: subjects.configPluginSettings(lab),
    readRuns: [
      ...consumeStream(STREAMS.runs, `${labRoot}.>`),
      ...consumeStream(STREAMS.logs, `${labRoot}.>`),
      ...consumeStream(kvStream(BUCKETS.runs), `$KV.${BUCKETS.runs}.${lab}.>`),
      ...getMessages(kvStream(BUCKETS.runs), true),
    ],
    watchSubjects: [`${labRoot}.run.>`, `${labRoot}.log.>`, `${labRoot}.progress.>`, `${labRoot}.host.*.hb`, subjects.configRevision(lab)],
  };
  const roles = new Map<Role, RolePermissions>([
    ["coordinator", coordinatorPermissions(ctx)],
    ["config", configPermissions(ctx)],
    ["fetcher", fetcherPermissions(ctx)],
    ["operator", operatorPermissions(ctx)],
    ["watcher", watcherPermissions(ctx)],
  ]);
  for (const host of hosts) roles.set(agentRole(host), agentPermissions(ctx, host));
  return roles;
}

/** The coordinator: phase commands, cancels and run events; any host's config; a resume's plugin pin; the runs stream and bucket. */
function coordinatorPermissions(ctx: RoleContext): RolePermissions {
  const { lab, labRoot, everyConfigGet, pluginSettings } = ctx;
  const c = ctx.common("coordinator");
  return {
    publish: {
      allow: [
        ...c.pub,
        `${labRoot}.host.*.cmd`,
        `${labRoot}.host.*.cancel`,
        `${labRoot}.host.*.ping`,
        `${labRoot}.run.*.event`,
        subjects.pluginsPin(lab),
        subjects.configShow(lab),
        everyConfigGet,
        `$KV.${BUCKETS.runs}.${lab}.>`,
        ...ownStream(STREAMS.runs),
        ...ownStream(STREAMS.logs),
        ...ownStream(kvStream(BUCKETS.runs)),
      ],
      deny: [pluginSettings],
    },
    subscribe: {
      allow: [...c.sub, wildcards.runStart, wildcards.runCancel, wildcards.heartbeats, wildcards.runResults],
      deny: [],
    },
    allowResponses: true,
  };
}

/** The config service: answers config requests; the only reader of the lab bucket; creates the agents' registry. */
function configPermissions(ctx: RoleContext): RolePermissions {
  const { lab, everyConfigGet, pluginSettings } = ctx;
  const c = ctx.common("config");
  return {
    publish: {
      allow: [
        ...c.pub,
        subjects.configRevision(lab),
        `$KV.${BUCKETS.labs}.${lab}`,
        ...ownStream(kvStream(BUCKETS.labs)),
        ...ownStream(kvStream(BUCKETS.agents)),
      ],
      deny: [everyConfigGet, pluginSettings],
    },
    subscribe: {
      allow: [...c.sub, wildcards.configApply, wildcards.configGet, wildcards.configShow, wildcards.configDelete, wildcards.configPluginSettings, subjects.labList()],
      deny: [],
    },
    allowResponses: true,
  };
}

/** The plugin fetcher: answers plugin requests, reads plugin credentials, writes the plugin store. */
function fetcherPermissions(ctx: RoleContext): RolePermissions {
  const { everyConfigGet, pluginSettings } = ctx;
  const c = ctx.common("fetcher");
  return {
    publish: {
      allow: [
        ...c.pub,
        pluginSettings,
        `$O.${OBJECT_STORES.plugins}.>`,
        `$KV.${BUCKETS.pluginIndex}.>`,
        ...ownStream(objStream(OBJECT_STORES.plugins)),
        ...ownStream(kvStream(BUCKETS.pluginIndex)),
      ],
      deny: [everyConfigGet],
    },
    subscribe: { allow: [...c.sub, wildcards.pluginsResolve, wildcards.pluginsPin], deny: [] },
    allowResponses: true,
  };
}

/** The operator's CLI: applies labs, starts and cancels runs, watches; no phase commands. */
function operatorPermissions(ctx: RoleContext): RolePermissions {
  const { lab, labRoot, everyConfigGet, pluginSettings, readRuns, watchSubjects } = ctx;
  const c = ctx.common("operator");
  return {
    publish: {
      allow: [
        ...c.pub,
        subjects.configApply(lab),
        subjects.configShow(lab),
        subjects.configDelete(lab),
        subjects.labList(),
        subjects.runStart(lab),
        subjects.runCancel(lab),
        `${labRoot}.host.*.ping`,
        `${labRoot}.host.*.plan`,
        ...readRuns,
      ],
      deny: [
        everyConfigGet,
        pluginSettings,
        `${labRoot}.host.*.cmd`,
        `${labRoot}.host.*.cancel`,
        `${labRoot}.run.>`,
        "$KV.>",
        "$O.>",
        ...NO_STREAM_ADMIN,
      ],
    },
    subscribe: { allow: [...c.sub, ...watchSubjects], deny: [] },
    allowResponses: false,
  };
}

/** A read-only watcher: runs, logs and progress; publishes nothing. */
function watcherPermissions(ctx: RoleContext): RolePermissions {
  const { readRuns, watchSubjects } = ctx;
  const c = ctx.common("watcher");
  return {
    publish: { allow: [...c.pub, ...readRuns], deny: ["sb.>", "$KV.>", "$O.>", ...NO_STREAM_ADMIN] },
    subscribe: { allow: [...c.sub, ...watchSubjects], deny: [] },
    allowResponses: false,
  };
}

/** The agent of one host: only its own commands, results, logs, progress, heartbeats and config. */
function agentPermissions(ctx: RoleContext, host: string): RolePermissions {
  const { lab, labRoot, hosts, pluginSettings, configGetOf } = ctx;
  const role = agentRole(host);
  const c = ctx.common(role);
  return {
    publish: {
      allow: [
        ...c.pub,
        subjects.hostHeartbeat(lab, host),
        subjects.hostPing(lab, host),
        `${labRoot}.run.*.result.${host}`,
        `${labRoot}.log.*.${host}`,
        `${labRoot}.progress.*.${host}`,
        configGetOf(host),
        subjects.pluginsResolve(lab, host),
        subjects.labList(),
        // Its own registration; read back through the stream-message get only.
        `$KV.${BUCKETS.agents}.${lab}.${host}`,
        ...getMessages(kvStream(BUCKETS.agents), false),
        // Plugin archives (written by the fetcher): their chunks, and their records.
        ...consumeStream(objStream(OBJECT_STORES.plugins), `$O.${OBJECT_STORES.plugins}.C.*`),
        ...getMessages(objStream(OBJECT_STORES.plugins), true),
      ],
      deny: [...hosts.filter((h) => h !== host).map(configGetOf), pluginSettings, ...NO_STREAM_ADMIN],
    },
    subscribe: {
      allow: [...c.sub, subjects.hostCommand(lab, host), subjects.hostCancel(lab, host), subjects.hostPing(lab, host), subjects.hostPlan(lab, host)],
      deny: [],
    },
    allowResponses: true,
  };
}

/** Checks a lab's host list: valid, unique names, at least one. */
export function checkHosts(hosts: readonly string[]): string[] {
  if (hosts.length === 0) throw new StackbusError(ErrorCode.InvalidArgument, "a lab needs at least one host to generate agent identities for");
  const seen = new Set<string>();
  for (const h of hosts) {
    validateName("host", h);
    if (seen.has(h)) throw new StackbusError(ErrorCode.InvalidArgument, `host ${JSON.stringify(h)} is listed twice`, { host: h });
    seen.add(h);
  }
  return [...hosts];
}

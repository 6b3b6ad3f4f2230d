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
 * The JetStream API subjects that read one stream: info, ordered consumers (restricted to
 * `filter` when given), direct and stored-message gets, and flow-control replies.
 */
function readStream(stream: string, filter?: string): string[] {
  return [
    `${JS}.STREAM.INFO.${stream}`,
    filter ? `${JS}.CONSUMER.CREATE.${stream}.*.${filter}` : `${JS}.CONSUMER.CREATE.${stream}.>`,
    `${JS}.CONSUMER.INFO.${stream}.*`,
    `${JS}.CONSUMER.MSG.NEXT.${stream}.*`,
    `${JS}.CONSUMER.DELETE.${stream}.*`,
    `${JS}.STREAM.MSG.GET.${stream}`,
    `${JS}.DIRECT.GET.${stream}`,
    `${JS}.DIRECT.GET.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

/** Reading a stream, plus creating it with the client's settings when it does not exist yet. */
function openStream(stream: string, filter?: string): string[] {
  return [...readStream(stream, filter), `${JS}.STREAM.CREATE.${stream}`];
}

/** Owning a stream: create, update its limits, purge. */
function ownStream(stream: string): string[] {
  return [...openStream(stream), `${JS}.STREAM.UPDATE.${stream}`, `${JS}.STREAM.PURGE.${stream}`];
}

const kvStream = (bucket: string) => `KV_${bucket}`;
const objStream = (bucket: string) => `OBJ_${bucket}`;

/**
 * The permissions of every role of one lab: least privilege, built from the subjects in
 * @stackbus/protocol. `inbox` is each identity's reply-inbox prefix (`_INBOX.<identity>`).
 *
 * Services subscribe to the protocol's all-lab wildcards (that is what they listen on);
 * everything they publish, and everything agents, the operator and watchers do, is
 * restricted to this lab, and each agent to its own host.
 */
export function rolePermissions(lab: string, hosts: readonly string[], inbox: (role: Role) => string): Map<Role, RolePermissions> {
  validateName("lab", lab);
  for (const h of hosts) validateName("host", h);
  const labRoot = `sb.${lab}`;
  const roles = new Map<Role, RolePermissions>();
  const common = (role: Role) => ({ pub: [`${JS}.INFO`], sub: [`${inbox(role)}.>`] });
  const configGetOf = (h: string) => subjects.configGet(lab, h);
  const everyConfigGet = `${labRoot}.config.get.*`;
  const pluginSettings = subjects.configPluginSettings(lab);

  // Reading runs and logs, as `stackbus watch`/`runs` and the coordinator do.
  const readRuns = [
    ...readStream(STREAMS.runs, `${labRoot}.>`),
    ...readStream(STREAMS.logs, `${labRoot}.>`),
    ...readStream(kvStream(BUCKETS.runs), `$KV.${BUCKETS.runs}.${lab}.>`),
    ...readStream(kvStream(BUCKETS.agents), `$KV.${BUCKETS.agents}.${lab}.>`),
  ];
  const watchSubjects = [
    `${labRoot}.run.>`,
    `${labRoot}.log.>`,
    `${labRoot}.progress.>`,
    `${labRoot}.host.*.hb`,
    subjects.configRevision(lab),
  ];

  {
    const c = common("coordinator");
    roles.set("coordinator", {
      publish: {
        allow: [
          ...c.pub,
          `${labRoot}.host.*.cmd`,
          `${labRoot}.host.*.cancel`,
          `${labRoot}.host.*.ping`,
          `${labRoot}.run.*.event`,
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
    });
  }
  {
    const c = common("config");
    roles.set("config", {
      publish: {
        allow: [...c.pub, subjects.configRevision(lab), `$KV.${BUCKETS.labs}.${lab}`, ...ownStream(kvStream(BUCKETS.labs))],
        deny: [everyConfigGet, pluginSettings],
      },
      subscribe: {
        allow: [...c.sub, wildcards.configApply, wildcards.configGet, wildcards.configShow, wildcards.configPluginSettings, subjects.labList()],
        deny: [],
      },
      allowResponses: true,
    });
  }
  {
    const c = common("fetcher");
    roles.set("fetcher", {
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
      subscribe: { allow: [...c.sub, wildcards.pluginsResolve], deny: [] },
      allowResponses: true,
    });
  }
  {
    const c = common("operator");
    roles.set("operator", {
      publish: {
        allow: [
          ...c.pub,
          subjects.configApply(lab),
          subjects.configShow(lab),
          subjects.labList(),
          subjects.runStart(lab),
          subjects.runCancel(lab),
          `${labRoot}.host.*.ping`,
          `${labRoot}.host.*.plan`,
          ...readRuns,
        ],
        deny: [everyConfigGet, pluginSettings, `${labRoot}.host.*.cmd`, `${labRoot}.host.*.cancel`, `${labRoot}.run.>`, "$KV.>", "$O.>"],
      },
      subscribe: { allow: [...c.sub, ...watchSubjects], deny: [] },
      allowResponses: false,
    });
  }
  {
    const c = common("watcher");
    roles.set("watcher", {
      publish: { allow: [...c.pub, ...readRuns], deny: ["sb.>", "$KV.>", "$O.>"] },
      subscribe: { allow: [...c.sub, ...watchSubjects], deny: [] },
      allowResponses: false,
    });
  }
  for (const host of hosts) {
    const role = agentRole(host);
    const c = common(role);
    roles.set(role, {
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
          `$KV.${BUCKETS.agents}.${lab}.${host}`,
          ...openStream(kvStream(BUCKETS.agents)),
          ...openStream(objStream(OBJECT_STORES.plugins)),
        ],
        deny: [...hosts.filter((h) => h !== host).map(configGetOf), pluginSettings],
      },
      subscribe: {
        allow: [...c.sub, subjects.hostCommand(lab, host), subjects.hostCancel(lab, host), subjects.hostPing(lab, host), subjects.hostPlan(lab, host)],
        deny: [],
      },
      allowResponses: true,
    });
  }
  return roles;
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

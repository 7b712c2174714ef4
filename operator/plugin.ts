// The contract between the operator process (main.ts) and the features it hosts: webhook routes on every replica, controllers on the leader.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AgentIdentity } from './api/types.ts';
import type { Controller, ControllerOptions } from './kube/controller.ts';
import type { KubeClient } from './kube/client.ts';
import type { Informer, InformerOptions, KubeObject } from './kube/informer.ts';
import type { OperatorMetrics } from './metrics.ts';
import type { WebhookRoute } from './server/admission.ts';

export type { WebhookRoute } from './server/admission.ts';

export interface OperatorContext {
  readonly kubeConfig: KubeConfig;
  /** The operator's API client (operator/kube/client.ts): list, watch, get, apply, mergePatch, delete. */
  readonly client: KubeClient;
  /** pino; never log credentials or Secret data. */
  readonly log: Logger;
  readonly metrics: OperatorMetrics;
  readonly operatorNamespace: string;
  /** Server-side apply field manager (`chaperone-operator`). */
  readonly fieldManager: string;
  /** True while this replica holds the Lease (always true with leader election off). */
  isLeader(): boolean;
  /**
   * The shared AgentIdentity informer (all namespaces), running on every replica: read it, never
   * mutate what it returns.
   */
  readonly identities: Informer<AgentIdentity>;
  /**
   * An informer started now on every replica and stopped with the operator; `/readyz` waits for its
   * first list. Create informers at factory time (webhook routes may read them before leading).
   */
  informer<T extends KubeObject>(options: Omit<InformerOptions<T>, 'client'>): Informer<T>;
  /**
   * A controller (work queue + reconcile + metrics). Create it in `startLeading` and start it there:
   * the operator stops it (draining in-flight work) when leadership ends or on shutdown.
   */
  controller(options: Omit<ControllerOptions, 'metrics' | 'log'> & { readonly log?: Logger }): Controller;
}

export interface OperatorPlugin {
  readonly name: string;
  /** Admission routes served by every replica (H2's webhook server mounts them). */
  readonly routes?: readonly WebhookRoute[];
  /**
   * Leader-only work. `signal` aborts when leadership is lost or the operator stops; controllers made
   * with `ctx.controller()` are stopped for you then.
   */
  startLeading?(signal: AbortSignal): Promise<void> | void;
  /** Called once on shutdown, after leading stopped and before the informers stop. */
  stop?(): Promise<void>;
}

export type OperatorPluginFactory = (ctx: OperatorContext) => OperatorPlugin | Promise<OperatorPlugin>;

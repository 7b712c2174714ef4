// /validate/pods/connect: `kubectl exec` / `kubectl attach` (CONNECT pods/exec, pods/attach) into the sidecar or the iptables init container is refused.
// The decision is pure (connectDecision); the route only reads the options, GETs the pod and encodes the answer.
import type { V1Pod } from '@kubernetes/client-node';
import { WEBHOOK_PATHS } from '../manifests/webhooks.ts';
import { DEFAULT_EXCLUDED_NAMESPACES } from '../webhooks/pod-mutate/decide.ts';
import { INTERCEPTION_CONTAINER_NAME } from '../webhooks/pod-mutate/interception.ts';
import { ANNOTATION_INJECTED, LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../webhooks/pod-mutate/layout.ts';
import { allow, deny, type AdmissionOutcome, type AdmissionRequest, type WebhookRoute } from './admission.ts';

export const PATH_VALIDATE_POD_CONNECT = WEBHOOK_PATHS.validatePodConnect;

/** The containers nobody may exec or attach into: they hold the upstream credentials and the pod's API token. */
export const PROTECTED_CONTAINERS: readonly string[] = [SIDECAR_CONTAINER_NAME, INTERCEPTION_CONTAINER_NAME];

/** The CONNECT subresources this route judges (port-forward and proxy reach the pod's network, not a container's files). */
export const CONNECT_SUBRESOURCES: readonly string[] = ['exec', 'attach'];

export type ConnectVerdict =
  | { readonly allowed: true; readonly outcome: 'pod-not-found' | 'not-chaperone' | 'no-target' | 'other-container'; readonly container?: string }
  | { readonly allowed: false; readonly outcome: 'protected-container'; readonly container: string; readonly message: string };

/**
 * The container the API server runs the exec/attach in: the named one, or with none named the pod's only regular
 * container (kube-apiserver's streamLocation; init and ephemeral containers are never the default). With several
 * regular containers and none named the API server refuses the request itself: undefined. The
 * `kubectl.kubernetes.io/default-container` annotation is read by kubectl, which then sends the name explicitly.
 */
export function resolveTarget(pod: V1Pod, requested: string): string | undefined {
  if (requested !== '') return requested;
  const regular = pod.spec?.containers ?? [];
  return regular.length === 1 ? regular[0]?.name : undefined;
}

/**
 * A pod Chaperone guards: labelled with an identity, marked injected, or carrying the native sidecar (an init container
 * chaperone-sidecar with restartPolicy Always). Any one is enough: exec is refused on the side of caution.
 */
export function isChaperonePod(pod: V1Pod): boolean {
  if (pod.metadata?.labels?.[LABEL_IDENTITY] !== undefined) return true;
  if (pod.metadata?.annotations?.[ANNOTATION_INJECTED] !== undefined) return true;
  return (pod.spec?.initContainers ?? []).some((c) => c.name === SIDECAR_CONTAINER_NAME && c.restartPolicy === 'Always');
}

/** Pure: may `subresource` (exec, attach) run in `requested` ('' = none named) of `pod` (undefined = not found)? */
export function connectDecision(pod: V1Pod | undefined, requested: string, subresource: string): ConnectVerdict {
  // The API server answers 404 itself after admission; nothing runs.
  if (pod === undefined) return { allowed: true, outcome: 'pod-not-found' };
  const target = resolveTarget(pod, requested);
  if (target === undefined) return { allowed: true, outcome: 'no-target' };
  if (!PROTECTED_CONTAINERS.includes(target)) return { allowed: true, outcome: 'other-container', container: target };
  if (!isChaperonePod(pod)) return { allowed: true, outcome: 'not-chaperone', container: target };
  const ns = pod.metadata?.namespace ?? '';
  const name = pod.metadata?.name ?? '';
  const what = target === SIDECAR_CONTAINER_NAME ? 'it holds the upstream credentials and the pod\'s API token' : 'it shares the sidecar\'s image and configuration';
  return {
    allowed: false,
    outcome: 'protected-container',
    container: target,
    message: `rule protected-container: ${subresource} into container ${target} of pod ${ns}/${name} is refused: ${what}; `
      + `${subresource} into an agent container instead, and read the sidecar's logs (kubectl logs -c ${SIDECAR_CONTAINER_NAME}) or its admin endpoint`,
  };
}

/** Reads a pod; undefined when it does not exist. A throw refuses the request (the server fails closed). */
export type PodGetter = (namespace: string, name: string) => Promise<V1Pod | undefined>;

export interface ConnectRoutesOptions {
  readonly getPod: PodGetter;
  readonly operatorNamespace: string;
  readonly excludedNamespaces?: readonly string[];
}

function containerOf(options: unknown): string {
  if (typeof options !== 'object' || options === null) return '';
  const c = (options as { container?: unknown }).container;
  return typeof c === 'string' ? c : '';
}

function handler(o: ConnectRoutesOptions, excluded: readonly string[]): (req: AdmissionRequest) => Promise<AdmissionOutcome> {
  return async (req) => {
    const sub = req.subResource ?? '';
    if (req.operation !== 'CONNECT' || req.resource.group !== '' || req.resource.resource !== 'pods' || !CONNECT_SUBRESOURCES.includes(sub)) {
      return { outcome: 'ignored', response: allow(req.uid) };
    }
    const namespace = req.namespace ?? '';
    if (namespace === o.operatorNamespace || excluded.includes(namespace)) return { outcome: 'excluded-namespace', response: allow(req.uid) };
    const name = req.name ?? '';
    if (namespace === '' || name === '') return { outcome: 'no-pod', response: deny(req.uid, 400, `chaperone: the ${sub} request names no pod (namespace ${JSON.stringify(namespace)}, name ${JSON.stringify(name)}); refused`) };
    // CONNECT carries the PodExecOptions / PodAttachOptions as the object, never the pod: read it.
    const pod = await o.getPod(namespace, name);
    const v = connectDecision(pod, containerOf(req.object), sub);
    return v.allowed ? { outcome: v.outcome, response: allow(req.uid) } : { outcome: v.outcome, response: deny(req.uid, 403, `chaperone: ${v.message}`) };
  };
}

/** The exec/attach route, for startWebhookServer (path as in operator/manifests/webhooks.ts). */
export function connectRoutes(o: ConnectRoutesOptions): WebhookRoute[] {
  const excluded = o.excludedNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES;
  return [{ path: PATH_VALIDATE_POD_CONNECT, name: 'validate-pod-connect', handle: handler(o, excluded) }];
}

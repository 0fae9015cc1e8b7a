import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Cluster } from '@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Cluster';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../relay/src/config/load-config.js';
import { checkAdvertised, parseConfig } from '../../relay/src/config/parse-config.js';
import { REPO_ROOT } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';

const DEPLOY = join(REPO_ROOT, 'deploy');
const UNIT = join(DEPLOY, 'systemd', 'lifeline-relay.service');

/** The relay's entry point as the Dockerfile installs it; the unit and the manifests must point there too. */
const ENTRY = '/opt/lifeline/node_modules/@lifeline/relay/bin/lifeline-relay.js';

/**
 * The deployment files, checked by the tools that read them: systemd-analyze for the unit,
 * the Kubernetes OpenAPI schemas (kubernetes-models) for the manifests, the relay's own config
 * parser for the config they carry. The container image is not built here (no container engine).
 */
describe('headless deployment: systemd unit, container image recipe, Kubernetes manifests', () => {
  test('the systemd unit passes systemd-analyze verify, and its security exposure is low', () => {
    const verify = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    assert.equal(verify.status, 0, `${verify.stdout}${verify.stderr}`);
    assert.equal(`${verify.stdout}${verify.stderr}`.trim(), '', 'no warning');
    const security = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT], { encoding: 'utf8' });
    const exposure = Number(/Overall exposure level for lifeline-relay\.service: ([\d.]+)/.exec(security.stdout)?.[1]);
    assert.ok(exposure <= 2.0, `exposure ${exposure} (systemd rates up to 3.9 "OK"):\n${security.stdout.slice(-3000)}`);
    const unit = readFileSync(UNIT, 'utf8');
    for (const line of ['User=lifeline', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'StateDirectory=lifeline', 'CapabilityBoundingSet=', 'PrivateTmp=yes']) {
      assert.ok(unit.split('\n').includes(line), `${line} in the unit`);
    }
    assert.ok(unit.includes(`ExecStart=/usr/bin/env node ${ENTRY} serve --config /etc/lifeline/relay.yaml`));
  });

  test('the Dockerfile is multi-stage, runs the relay only, as a non-root user', () => {
    // One entry per instruction, continuation lines joined, comments dropped.
    const lines = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ').split('\n').filter((line) => /^[A-Z]+ /.test(line));
    const stages = lines.filter((line) => line.startsWith('FROM '));
    assert.equal(stages.length, 2, 'a build stage and a runtime stage');
    const runtime = lines.slice(lines.indexOf(stages[1]!));
    assert.ok(runtime.some((line) => line.startsWith('COPY --from=build /opt/lifeline')));
    assert.ok(!runtime.some((line) => /g\+\+|make|python3/.test(line)), 'no build tools in the runtime image');
    const user = runtime.find((line) => line.startsWith('USER '));
    assert.equal(user, 'USER 10001:10001');
    assert.equal(runtime.find((line) => line.startsWith('ENTRYPOINT ')), `ENTRYPOINT ["node", "${ENTRY}"]`);
    assert.equal(runtime.find((line) => line.startsWith('EXPOSE ')), 'EXPOSE 2222 6080 8440');
    assert.ok(!lines.some((line) => /electron|chromium/i.test(line)), 'the relay only, not the desktop app');
  });

  test('the container config in docs/deploy.md is one the relay accepts: absolute dataDir, an advertised address, the /dev/pts mount', () => {
    const guide = readFileSync(join(DEPLOY, '..', 'docs', 'deploy.md'), 'utf8');
    const yaml = /tee \/etc\/lifeline\/relay\.yaml >\/dev\/null <<'YAML'\n([\s\S]*?)\nYAML\n/.exec(guide)?.[1];
    assert.ok(yaml, 'docs/deploy.md shows the container relay config');
    const config = parseConfig(parseYaml(yaml), '/etc/lifeline/relay.yaml', '/etc/lifeline');
    assert.equal(config.dataDir, '/var/lib/lifeline');
    checkAdvertised(config);
    assert.match(guide, /-v \/dev\/pts:\/dev\/pts/);
  });

  test('the Kubernetes manifests validate against the Kubernetes schemas and fit together', () => {
    const documents = parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', 'lifeline-relay.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, any>);
    const models: Record<string, new (value: any) => { validate(): void }> = { Namespace, ConfigMap, DaemonSet, Service };
    // No Secret: a token shipped in the manifest would be a working token in every clone.
    assert.deepEqual(documents.map((d) => d.kind), ['Namespace', 'ConfigMap', 'DaemonSet', 'Service']);
    for (const document of documents) new models[document.kind]!(document).validate();
    // The schema check is real: a wrong type is refused.
    const broken = structuredClone(documents[2]!);
    broken.spec.template.spec.containers[0].ports[0].containerPort = '2222';
    assert.throws(() => new DaemonSet(broken).validate(), /containerPort must be integer/);

    const [, configMap, daemonSet, service] = documents as [unknown, any, any, any];
    const pod = daemonSet.spec.template.spec;
    const container = pod.containers[0];
    assert.deepEqual(daemonSet.spec.selector.matchLabels, daemonSet.spec.template.metadata.labels);
    assert.deepEqual(service.spec.selector, daemonSet.spec.template.metadata.labels);
    assert.deepEqual(container.ports.map((p: any) => [p.name, p.containerPort]), [['ssh', 2222], ['vnc', 6080], ['api', 8440]]);
    assert.deepEqual(service.spec.ports.map((p: any) => [p.port, p.targetPort]), [[2222, 'ssh'], [6080, 'vnc'], [8440, 'api']]);
    for (const probe of [container.readinessProbe, container.livenessProbe]) assert.deepEqual(probe.httpGet, { path: '/healthz', port: 'api', scheme: 'HTTPS' });
    const tokenFrom = container.env.find((e: any) => e.name === 'LIFELINE_ADMIN_TOKEN').valueFrom.secretKeyRef;
    // The Secret the pod reads is the one docs/deploy.md creates, before the manifest is applied.
    const guide = readFileSync(join(DEPLOY, '..', 'docs', 'deploy.md'), 'utf8');
    const create = guide.indexOf(`kubectl -n lifeline create secret generic ${tokenFrom.name} --from-literal=${tokenFrom.key}="$(openssl rand -base64 32)"`);
    assert.ok(create > 0, 'docs/deploy.md creates the Secret');
    assert.ok(create < guide.indexOf('kubectl apply -f deploy/kubernetes/lifeline-relay.yaml'), 'before applying the manifest');
    assert.equal(pod.volumes.find((v: any) => v.name === 'config').configMap.name, configMap.metadata.name);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.runAsUser, 10001, 'the image\'s user');
    assert.deepEqual(container.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    assert.equal(container.args.join(' '), 'serve --config /etc/lifeline/relay.yaml');

    // The config it carries is one the relay accepts, with TLS on (it listens off loopback).
    const config = parseConfig(parseYaml(configMap.data['relay.yaml']), '/etc/lifeline/relay.yaml', '/etc/lifeline');
    // It listens on every address: the relay would refuse it without an advertised address, which the pod's IP gives.
    assert.throws(() => checkAdvertised(config), /advertiseAddress: is needed/);
    assert.deepEqual(container.env.find((e: any) => e.name === 'LIFELINE_ADVERTISE_ADDRESS').valueFrom, { fieldRef: { fieldPath: 'status.podIP' } });
    checkAdvertised({ ...config, endpoints: { ...config.endpoints, default: { ...config.endpoints.default, advertiseAddress: '10.244.1.7' } } });
    assert.equal(config.dataDir, '/var/lib/lifeline');
    assert.equal(config.api.port, 8440);
    assert.deepEqual(config.discover, [{ kind: 'libvirt', uri: 'qemu:///system' }]);
  });

  test('the fleet\'s systemd units (gateway, agent) pass systemd-analyze verify with a low exposure', () => {
    for (const name of ['lifeline-gateway', 'lifeline-agent']) {
      const unit = join(DEPLOY, 'systemd', `${name}.service`);
      const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
      assert.equal(`${verify.stdout}${verify.stderr}`.trim(), '', `${name}: no warning`);
      assert.equal(verify.status, 0);
      const security = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', unit], { encoding: 'utf8' });
      const exposure = Number(new RegExp(`Overall exposure level for ${name}\\.service: ([\\d.]+)`).exec(security.stdout)?.[1]);
      assert.ok(exposure <= 2.0, `${name}: exposure ${exposure}`);
      const text = readFileSync(unit, 'utf8');
      assert.ok(text.includes(`ExecStart=/usr/bin/env node ${ENTRY} serve --config /etc/lifeline/${name.replace('lifeline-', '')}.yaml`));
    }
  });

  test('the fleet manifests validate against the Kubernetes and CloudNativePG schemas, fit together, and carry configs the relay accepts', () => {
    const read = (file: string): Array<Record<string, any>> => parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', file), 'utf8')).map((d) => d.toJS() as Record<string, any>);
    const documents = read('lifeline-fleet.yaml');
    const models: Record<string, new (value: any) => { validate(): void }> = { Namespace, ConfigMap, Deployment, PodDisruptionBudget, DaemonSet, Service };
    assert.deepEqual(documents.map((d) => d.kind), ['Namespace', 'ConfigMap', 'ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'Service', 'DaemonSet'], 'no Secret in the manifest');
    for (const document of documents) new models[document.kind]!(document).validate();
    const [cluster] = read('lifeline-postgres.yaml');
    new Cluster(cluster as any).validate();
    assert.throws(() => new Cluster({ ...cluster, spec: { ...cluster!.spec, instances: 'three' } } as any).validate(), /instances must be integer/);

    const [, gatewayConfig, agentConfig, deployment, pdb, service, agentsService, daemonSet] = documents as any[];
    const gatewayLabels = deployment.spec.template.metadata.labels;
    assert.equal(deployment.spec.replicas, 2);
    assert.deepEqual(pdb.spec.selector.matchLabels, gatewayLabels);
    assert.equal(pdb.spec.minAvailable, 1);
    assert.deepEqual(service.spec.selector, gatewayLabels);
    assert.deepEqual(service.spec.ports.map((p: any) => p.port), [2222, 6080, 8440]);
    assert.equal(agentsService.spec.clusterIP, 'None');
    assert.deepEqual(agentsService.spec.selector, gatewayLabels);
    assert.deepEqual(agentsService.spec.ports.map((p: any) => [p.port, p.targetPort]), [[3024, 'agents']]);
    const gateway = deployment.spec.template.spec.containers[0];
    assert.deepEqual(gateway.readinessProbe.httpGet, { path: '/healthz', port: 'api', scheme: 'HTTPS' });
    const fromSecret = (container: any, name: string): any => container.env.find((e: any) => e.name === name)?.valueFrom?.secretKeyRef;
    for (const name of ['LIFELINE_POSTGRES_URL', 'LIFELINE_ADMIN_TOKEN', 'LIFELINE_FLEET_SECRET']) assert.equal(fromSecret(gateway, name)?.name, 'lifeline-fleet', `${name} from the Secret`);
    const agent = daemonSet.spec.template.spec.containers[0];
    assert.equal(agent.ports, undefined, 'the agent has no ports');
    assert.ok(!documents.some((d) => d.kind === 'Service' && d.spec.selector?.['app.kubernetes.io/name'] === 'lifeline-agent'), 'and no Service');

    // The configs they carry, with the environment the pods give them.
    const tmp = tempDir('deploy');
    try {
      const gatewayFile = join(tmp.path, 'gateway.yaml');
      writeFileSync(gatewayFile, gatewayConfig.data['gateway.yaml']);
      const parsedGateway = loadConfigFile(gatewayFile, { LIFELINE_POSTGRES_URL: 'postgres://lifeline@db:5432/lifeline', LIFELINE_ADVERTISE_ADDRESS: '10.244.1.7' });
      assert.equal(parsedGateway.role, 'gateway');
      assert.deepEqual(parsedGateway.gateway?.agentsAdvertise, { host: '10.244.1.7', port: 3024 }, 'each gateway pod advertises its own IP to agents');
      const agentFile = join(tmp.path, 'agent.yaml');
      writeFileSync(agentFile, agentConfig.data['agent.yaml']);
      const parsedAgent = loadConfigFile(agentFile, { LIFELINE_AGENT_NAME: 'hv-7' });
      assert.equal(parsedAgent.agent?.name, 'hv-7');
      assert.equal(parsedAgent.agent?.joinTokenFile, '/etc/lifeline-join/{agent}');
      assert.throws(() => loadConfigFile(agentFile, {}), /agent\.name: is needed with role: agent.*LIFELINE_AGENT_NAME/);
    } finally {
      tmp.dispose();
    }
  });
});


// The golden texts of every tool through the official MCP TypeScript SDK client over stdio,
// on the agent-sandbox provider against the emulated cluster (tests/k8s: API server +
// agent-sandbox controller + router + agentbox-runtime pods). Same cases, same texts as on
// the local provider (goldens_local.test.mjs); see lib/goldens.mjs.
import { goldenSuites } from './lib/suite.mjs';

goldenSuites('agent-sandbox', { clusterArgs: ['--isolated-pods'] });

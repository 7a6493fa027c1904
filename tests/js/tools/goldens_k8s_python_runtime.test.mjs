// The same golden texts on the agent-sandbox provider when it speaks only the upstream
// python-runtime API (k8s.runtime_api: python-runtime: POST /execute, /upload, GET
// /download/...; no streaming exec, no stat/list extensions), against the emulated cluster.
// Every text matches the local provider's.
import { goldenSuites } from './lib/suite.mjs';

goldenSuites('agent-sandbox', {
  clusterArgs: ['--isolated-pods'],
  sets: { 'k8s.runtime_api': 'python-runtime' },
});

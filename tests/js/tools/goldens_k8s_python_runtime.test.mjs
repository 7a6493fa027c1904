// The same golden texts on the agent-sandbox provider when it speaks only the upstream
// python-runtime API (k8s.runtime_api: python-runtime: POST /execute, /upload, GET
// /download/...; no streaming exec, no stat/list extensions), against the emulated cluster.
// Everything matches the local provider but one case, documented below.
import { goldenSuites } from './lib/suite.mjs';

goldenSuites('agent-sandbox', {
  clusterArgs: ['--isolated-pods'],
  sets: { 'k8s.runtime_api': 'python-runtime' },
  overrides: {
    read_symlink_contained: {
      text: "Error: File '/workspace/esc': permission_denied",
      is_error: true,
      why: 'the symlink leads out of the runtime base directory: the python-runtime refuses it '
        + '(403), and the provider reads outside the workspace only through agentbox-runtime\'s '
        + 'exec extension, never by running commands through /execute on the upstream runtime',
    },
  },
});

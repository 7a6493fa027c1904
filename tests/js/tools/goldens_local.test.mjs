// The golden texts of every tool through the official MCP TypeScript SDK client over stdio,
// against the local (Linux namespace) provider. See lib/goldens.mjs.
import { goldenSuites } from './lib/suite.mjs';

goldenSuites('local');

// suite.mjs - the golden suites as node:test tests, for one provider: every file-tool case of
// tests/data/fsops and every tool case of tests/js/tools/goldens, each as its own subtest,
// one server per distinct configuration (limits, config keys).
import { after, before, describe, test } from 'node:test';
import { groupBy, limitSets, loadFsopsCases, loadToolCases, runFsopsCase, runToolCase } from './goldens.mjs';
import { startCluster, startServer } from './server.mjs';

// opts: sets (extra --set pairs), clusterArgs (agent-sandbox).
export function goldenSuites(provider, opts = {}) {
  let cluster = null;
  if (provider === 'agent-sandbox') {
    before(async () => { cluster = await startCluster({ args: opts.clusterArgs || [] }); });
    after(async () => { await cluster?.stop(); });
  }
  const only = process.env.GOLDEN_ONLY ? new RegExp(process.env.GOLDEN_ONLY) : null;
  const pick = (cases) => (only ? cases.filter((c) => only.test(c.name)) : cases);

  const suites = [
    ['file tools (tests/data/fsops)', groupBy(pick(loadFsopsCases()), (c) => limitSets(c.c.limits)), runFsopsCase],
    ['execute, execute_python, lifecycle (tests/js/tools/goldens)', groupBy(pick(loadToolCases()), (c) => c.c.config || {}), runToolCase],
  ];
  for (const [title, groups, run] of suites) {
    describe(`${title} on ${provider}`, () => {
      for (const g of groups) {
        describe(`config ${JSON.stringify(g.sets)}`, () => {
          let srv = null;
          before(async () => { srv = await startServer({ provider, cluster, sets: { ...(opts.sets || {}), ...g.sets } }); });
          after(async () => { await srv?.stop(); });
          for (const c of g.cases) test(c.name, async () => run(srv, c));
        });
      }
    });
  }
}

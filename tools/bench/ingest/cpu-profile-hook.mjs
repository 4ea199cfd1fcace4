/**
 * Loaded with `NODE_OPTIONS=--import <this file>` (Node refuses `--cpu-prof` in NODE_OPTIONS):
 * profiles the whole life of the process with V8's sampling profiler and writes
 * `<service>-<pid>.cpuprofile` into POSTMESH_CPU_PROFILE_DIR when the process exits.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { basename, dirname, join } from 'node:path';

const dir = process.env.POSTMESH_CPU_PROFILE_DIR;
if (dir) {
  const script = process.argv[1] ?? 'node';
  // services/<name>/dist/main.js → <name>
  const name = basename(script) === 'main.js' ? basename(dirname(dirname(script))) : basename(script);
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  let written = false;
  process.on('exit', () => {
    if (written) return;
    written = true;
    // A same-thread session answers synchronously, so this completes within the exit handler.
    session.post('Profiler.stop', (error, result) => {
      if (error === null && result !== undefined)
        writeFileSync(join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}

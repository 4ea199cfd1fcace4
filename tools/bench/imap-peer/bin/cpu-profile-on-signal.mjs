/**
 * Loaded with `NODE_OPTIONS=--import <this file>` into the services of a stack under test: SIGUSR2
 * starts V8's sampling profiler, the next SIGUSR2 stops it and writes
 * `<service>-<pid>-<n>.cpuprofile` into POSTMESH_CPU_PROFILE_DIR. So a profile covers one
 * benchmark phase, not the start-up, the index rebuild or the fill before it.
 * With POSTMESH_PROFILE_KIND=heap it samples allocations instead (V8's sampling heap profiler,
 * one sample per 32 KiB allocated) and writes `<service>-<pid>-<n>.heapprofile`: what each function
 * allocates during the phase, which is what the garbage collector's share of the CPU comes from.
 * (tools/bench/ingest/cpu-profile-hook.mjs profiles a process's whole life instead.)
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
  let running = false;
  let written = 0;
  const heap = process.env.POSTMESH_PROFILE_KIND === 'heap';
  process.on('SIGUSR2', () => {
    if (heap) {
      if (!running) {
        session.post('HeapProfiler.enable');
        session.post('HeapProfiler.startSampling', {
          samplingInterval: 32 * 1024,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
        running = true;
        return;
      }
      running = false;
      session.post('HeapProfiler.stopSampling', (error, result) => {
        if (error === null && result !== undefined) {
          written += 1;
          writeFileSync(
            join(dir, `${name}-${process.pid}-${written}.heapprofile`),
            JSON.stringify(result.profile),
          );
        }
      });
      return;
    }
    if (!running) {
      session.post('Profiler.enable');
      session.post('Profiler.setSamplingInterval', { interval: 1000 });
      session.post('Profiler.start');
      running = true;
      return;
    }
    running = false;
    session.post('Profiler.stop', (error, result) => {
      if (error === null && result !== undefined) {
        written += 1;
        writeFileSync(
          join(dir, `${name}-${process.pid}-${written}.cpuprofile`),
          JSON.stringify(result.profile),
        );
      }
    });
  });
}

/**
 * COMPRESS — RFC 4978 §3: DEFLATE only; `NO [COMPRESSIONACTIVE]` when it is already on, BAD for
 * another mechanism. The session switches both directions to DEFLATE right after the tagged OK
 * (Session.startCompression), the same way STARTTLS starts TLS.
 */
import type { CommandOf, Handler } from './context.js';

export const compress: Handler<CommandOf<'COMPRESS'>> = (ctx, command) => {
  if (command.mechanism !== 'DEFLATE') {
    return Promise.resolve({
      tag: command.tag,
      condition: 'BAD',
      text: `Unsupported compression mechanism ${command.mechanism}`,
    });
  }
  if (ctx.compressed) {
    return Promise.resolve({
      tag: command.tag,
      condition: 'NO',
      code: { code: 'COMPRESSIONACTIVE' },
      text: 'Compression is already active',
    });
  }
  return Promise.resolve({ tag: command.tag, condition: 'OK', text: 'DEFLATE active' });
};

import {
  CommandReceiver,
  parseCommand,
  type Command,
  type CommandParseError,
  type ParseOptions,
  type RawCommand,
  type ReceiverEvent,
} from '../src/index.js';

/** Feeds the input and collects every event until the receiver needs more data. */
export function drain(receiver: CommandReceiver): ReceiverEvent[] {
  const events: ReceiverEvent[] = [];
  for (;;) {
    const event = receiver.next();
    if (event.kind === 'needMore') return events;
    events.push(event);
  }
}

/** The single command the text makes (literals included). */
export function rawOf(text: string | Buffer): RawCommand {
  const receiver = new CommandReceiver();
  receiver.push(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  const commands = drain(receiver).flatMap((e) => (e.kind === 'command' ? [e.command] : []));
  if (commands.length !== 1) throw new Error(`expected one command, got ${commands.length}`);
  return commands[0]!;
}

export function parseOk(text: string | Buffer, options?: ParseOptions): Command {
  const result = parseCommand(rawOf(text), options);
  if (!result.ok) throw new Error(`parse failed: ${result.error.message}`);
  return result.command;
}

export function parseErr(text: string | Buffer, options?: ParseOptions): CommandParseError {
  const result = parseCommand(rawOf(text), options);
  if (result.ok) throw new Error(`expected a syntax error, got ${JSON.stringify(result.command, replacer)}`);
  return result.error;
}

function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${value}n` : value;
}

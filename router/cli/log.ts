import { pino, type Logger } from "pino";

export function logger(level = process.env.WEFT_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { pid: process.pid } });
}

// The services share one logger: libs/log.
export { createLogger, isLogLevel, silentLogger, type Logger, type LogLevel } from '../../libs/log/logger.js';

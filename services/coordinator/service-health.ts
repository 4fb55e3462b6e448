// What grpc.health.v1 says of cistern.v1.StorageService: SERVING only while this coordinator
// can do its work. Cut off from NATS it reaches no host (every operation is UNAVAILABLE) and
// its reads are stale, so a load balancer or readiness probe is told NOT_SERVING and sends
// clients to a coordinator that is connected. The server's own status ('') stays SERVING
// while it runs: a liveness probe restarting it would not bring NATS back.
import type { HealthImplementation } from 'grpc-health-check';

export class ServiceHealth {
  private busUp = true;
  private serving = false;

  constructor(
    private readonly health: HealthImplementation,
    private readonly service: string,
  ) {}

  /** The coordinator answers calls (after its start). */
  start(): void {
    this.serving = true;
    this.health.setStatus('', 'SERVING');
    this.report();
  }

  /** The main NATS connection was lost (false) or is back (true). */
  bus(up: boolean): void {
    this.busUp = up;
    this.report();
  }

  /** Stopping: NOT_SERVING for good, whatever the bus does meanwhile. */
  stop(): void {
    this.serving = false;
    this.health.setStatus('', 'NOT_SERVING');
    this.report();
  }

  private report(): void {
    this.health.setStatus(this.service, this.serving && this.busUp ? 'SERVING' : 'NOT_SERVING');
  }
}

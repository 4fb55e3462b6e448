// How far this coordinator's catalog watch has read: the highest revision of a pool entry it
// has delivered to the cache. The watch delivers the bucket's changes in revision order, so
// once it has delivered revision R, every pool change before R is in the cache too: what a
// write at R must be checked against (define-conflicts.ts).
import { Watermark } from './watermark.js';

export class CatalogWatermark extends Watermark<number> {
  constructor() {
    super(0);
  }
}

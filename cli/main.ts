#!/usr/bin/env node
// cisternctl: virsh's pool and volume commands for a Cistern fleet.
import { main } from './process-main.js';

await main();

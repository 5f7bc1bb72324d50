#!/usr/bin/env node
// The `kith` command: runs the TypeScript entry through tsx (a dependency).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/entry.ts');

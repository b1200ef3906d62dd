#!/usr/bin/env node
// Runs the TypeScript entry directly (Node 20 cannot strip types itself).
import { register } from 'tsx/esm/api';

register();
await import('./evacuator.ts');

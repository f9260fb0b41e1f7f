import { benchCpuidExit } from '../src/index.js';
for (let i = 0; i < 4; i++) console.log('cpuid', benchCpuidExit(100000).toFixed(0), 'ns');

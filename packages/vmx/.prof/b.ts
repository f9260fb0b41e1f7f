import { benchCpuidExit, benchPioExit } from '../src/index.js';
console.log('cpuid', benchCpuidExit(20000).toFixed(0), 'ns');
console.log('cpuid', benchCpuidExit(20000).toFixed(0), 'ns');
console.log('pio', benchPioExit(5000).toFixed(0), 'ns');

export { kvmRefUnavailable } from './helper.js';
export { runSnippets, SNIPPET_LAYOUT } from './snippets.js';
export type { Snippet, SnippetResult } from './snippets.js';
export { runIoctlScript } from './ioctl-script.js';
export type { FdRef, UserPtr, IoctlArg, IoctlStep, StepResult } from './ioctl-script.js';
export { runImage } from './image.js';
export type { ImageOptions, ImageResult, TraceRow } from './image.js';
export { generateSnippets, generateFaultingSnippets, Rng, FLAG, ARITH, COMPARED_FLAGS, INSN_CLASSES } from './snippet-gen.js';
export type { GeneratedSnippet, GenerateOptions, InsnClass, FaultingSnippet } from './snippet-gen.js';

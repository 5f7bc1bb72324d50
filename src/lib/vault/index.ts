export * from './vault';
export { loadAutomerge } from './automerge';
export * from './move';

export * from './vault';
export { loadAutomerge } from './automerge';

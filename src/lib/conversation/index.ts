export * from './conversation-doc';
export * from './doc-rules';
export * from './hlc';
export * from './operations';
export * from './reducer';
export * from './roster';
export * from './admission';

export * from './pairing';
export * from './channel';
export * from './device-name';
export * from './history';

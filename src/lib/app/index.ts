export { createApp } from './create-app';
export { provideApp, useApp } from './context';
export type { KithApp } from './kith.svelte';
export type { ConversationSession } from './conversation-session.svelte';
export * from './types';

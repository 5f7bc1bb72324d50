/**
 * Kith's UI components. They take plain data and callbacks (the types of
 * `$lib/app/types`), import nothing else of the app, and expect the tokens
 * of `src/app.css` to be loaded by the root layout.
 */
export { default as Alert } from './Alert.svelte';
export { default as AppShell } from './AppShell.svelte';
export { default as Composer } from './Composer.svelte';
export { default as ConversationList } from './ConversationList.svelte';
export { default as ConversationView } from './ConversationView.svelte';
export { default as Onboarding } from './Onboarding.svelte';
export { default as RecoveryKeyDialog } from './RecoveryKeyDialog.svelte';
export { default as SafetyNumberDialog } from './SafetyNumberDialog.svelte';
export { default as SearchPanel } from './SearchPanel.svelte';
export { default as Unlock } from './Unlock.svelte';
export * from './format';
export { default as ConnectionIndicator } from './ConnectionIndicator.svelte';
export { default as InviteDialog } from './InviteDialog.svelte';
export { default as MembersDialog } from './MembersDialog.svelte';
export { default as Modal } from './Modal.svelte';
export { default as Page } from './Page.svelte';
export { default as HitLink } from './HitLink.svelte';
export { default as UpdateBanner } from './UpdateBanner.svelte';
export { restoreDrafts, stashDrafts, type DraftStorage } from './drafts';
export { default as LanPeers } from './LanPeers.svelte';
export { default as LinkDeviceDialog } from './LinkDeviceDialog.svelte';

import { checkName, errorText } from './format';

/**
 * The state of a form that submits one name (a display name, a conversation
 * name): the field's own error when the name is not valid, the failure of the
 * action (shown in an alert), and whether the action is pending.
 */
export class NameForm {
	nameError = $state<string | null>(null);
	failure = $state<string | null>(null);
	pending = $state(false);

	/** `what` names the field in its errors ("Enter a display name."). */
	constructor(private readonly what: string) {}

	/**
	 * Check `name`: when it is not valid, show why and focus `field`; else run
	 * `action` with the trimmed name while pending, showing a rejection as the
	 * failure. Resolves whether the action succeeded.
	 */
	async submit(
		name: string,
		field: HTMLElement | undefined,
		action: (name: string) => Promise<unknown>
	): Promise<boolean> {
		this.failure = null;
		const check = checkName(name, this.what);
		if (!check.ok) {
			this.nameError = check.error;
			field?.focus();
			return false;
		}
		this.nameError = null;
		this.pending = true;
		try {
			await action(check.value);
			return true;
		} catch (error) {
			this.failure = errorText(error);
			return false;
		} finally {
			this.pending = false;
		}
	}
}

import { icon, type IconName } from './icons.js';

export interface ButtonOptions {
  /** Accessible name when it differs from the label (tests and screen readers use it). */
  name?: string;
  icon?: IconName;
  /** Show only the icon; the label becomes the tooltip and the accessible name. */
  iconOnly?: boolean;
  variant?: 'primary' | 'danger' | 'ghost';
  /** Tooltip; defaults to the label. */
  title?: string;
  /** Disabled, with this as its tooltip and description: why it cannot be used (the API token lacks a scope). */
  disabledBecause?: string;
}

/** An accessible button, optionally with an icon. */
export function button(label: string, onClick: () => unknown, options: ButtonOptions = {}): HTMLButtonElement {
  const node = document.createElement('button');
  node.type = 'button';
  if (options.icon) node.append(icon(options.icon));
  if (!options.iconOnly) node.append(element('span', { class: 'label' }, label));
  if (options.iconOnly) node.classList.add('icon-only');
  if (options.variant) node.classList.add(options.variant);
  // Always named: a narrow window hides the text label, which would leave the button nameless.
  node.setAttribute('aria-label', options.name ?? label);
  node.title = options.title ?? label;
  if (options.disabledBecause) {
    node.disabled = true;
    node.title = options.disabledBecause;
    node.setAttribute('aria-description', options.disabledBecause);
  }
  node.addEventListener('click', () => void onClick());
  return node;
}

export function checkbox(label: string, checked: boolean, onChange: (checked: boolean) => void, options: { icon?: IconName; class?: string } = {}): HTMLLabelElement {
  const wrapper = element('label', { class: options.class ?? 'check' });
  const input = document.createElement('input');
  input.type = 'checkbox';
  input.checked = checked;
  input.addEventListener('change', () => onChange(input.checked));
  wrapper.append(input, ...(options.icon ? [icon(options.icon)] : []), element('span', {}, label));
  return wrapper;
}

export function element<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'class') node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** A text input with a visible label. */
export function field(label: string, attributes: Record<string, string> = {}): { wrapper: HTMLLabelElement; input: HTMLInputElement } {
  const input = element('input', { 'aria-label': label, ...attributes });
  return { wrapper: element('label', { class: 'field' }, element('span', {}, label), input), input };
}

/** A modal dialog with a title; `close()` removes it. Escape closes it too. */
export function modal(title: string, options: { class?: string; onClose?: () => void } = {}): { dialog: HTMLDialogElement; body: HTMLElement; close: () => void } {
  const dialog = element('dialog', { class: `modal ${options.class ?? ''}`.trim(), 'aria-label': title });
  const body = element('div', { class: 'modal-body' });
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    dialog.close();
    dialog.remove();
    options.onClose?.();
  };
  dialog.append(element('header', { class: 'modal-header' }, element('h2', {}, title), button('Close dialog', close, { icon: 'close', iconOnly: true, variant: 'ghost' })), body);
  dialog.addEventListener('cancel', (event) => {
    event.preventDefault();
    close();
  });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, body, close };
}

/** A modal question with the action spelled out on its button; resolves true only when that button is pressed. */
export function confirmDialog(title: string, message: Array<Node | string>, confirmLabel: string): Promise<boolean> {
  return new Promise((resolve) => {
    let answer = false;
    const { body, close } = modal(title, { class: 'confirm', onClose: () => resolve(answer) });
    const cancel = button('Cancel', close);
    const confirm = button(confirmLabel, () => {
      answer = true;
      close();
    }, { variant: 'danger' });
    body.append(element('p', {}, ...message), element('div', { class: 'dialog-actions' }, cancel, confirm));
    cancel.focus();
  });
}

/** Small DOM helpers: accessible buttons and checkboxes. */
export function button(label: string, onClick: () => unknown, options: { name?: string } = {}): HTMLButtonElement {
  const element = document.createElement('button');
  element.type = 'button';
  element.textContent = label;
  if (options.name) element.setAttribute('aria-label', options.name);
  element.addEventListener('click', () => void onClick());
  return element;
}

export function checkbox(label: string, checked: boolean, onChange: (checked: boolean) => void): HTMLLabelElement {
  const wrapper = document.createElement('label');
  const input = document.createElement('input');
  input.type = 'checkbox';
  input.checked = checked;
  input.addEventListener('change', () => onChange(input.checked));
  wrapper.append(input, ` ${label}`);
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

/** A modal question with the action spelled out on its button; resolves true only when that button is pressed. */
export function confirmDialog(title: string, message: Array<Node | string>, confirmLabel: string): Promise<boolean> {
  const dialog = element('dialog', { class: 'confirm', 'aria-label': title });
  const heading = element('h2', {}, title);
  const text = element('p', {}, ...message);
  return new Promise((resolve) => {
    const done = (answer: boolean): void => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    const cancel = button('Cancel', () => done(false));
    const confirm = button(confirmLabel, () => done(true));
    confirm.classList.add('danger');
    dialog.append(heading, text, element('div', { class: 'dialog-actions' }, cancel, confirm));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

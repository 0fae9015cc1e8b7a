/** A menu item as Electron's Menu.buildFromTemplate takes it (the shell passes these through). */
export interface MenuItemTemplate {
  label?: string;
  role?: string;
  type?: 'separator';
  submenu?: MenuItemTemplate[];
}

/**
 * The application menu: Electron's default one has Reload and Force Reload, which would reload
 * the renderer and leave main's tabs (and their auto-renewing SSH sessions) without a page. This
 * one has the editing, view and window items without them.
 */
export function applicationMenuTemplate(platform: NodeJS.Platform): MenuItemTemplate[] {
  return [
    ...(platform === 'darwin' ? [{ role: 'appMenu' }] : []),
    { label: 'File', submenu: [{ role: platform === 'darwin' ? 'close' : 'quit' }] },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [{ role: 'resetZoom' }, { role: 'zoomIn' }, { role: 'zoomOut' }, { type: 'separator' }, { role: 'togglefullscreen' }, { type: 'separator' }, { role: 'toggleDevTools' }],
    },
    { role: 'windowMenu' },
  ];
}

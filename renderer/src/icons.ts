import {
  CircleHelp, CircleDot, Clipboard, Hand, Pause, Play, ClipboardPaste, Copy, createElement, Eraser, Expand, Eye, Fullscreen, KeyRound, Keyboard, LifeBuoy, Monitor, Moon, Network, Pencil, Plus,
  RefreshCw, Save, Search, Server, SquareTerminal, Sun, TimerReset, Trash2, TriangleAlert, X, ZoomIn, ZoomOut, Camera, ChevronUp, ChevronDown, Power, Ban, Zap, Lock, ShieldCheck, HardDrive, type IconNode,
} from 'lucide';

/** The icons the UI uses, from lucide (bundled; no CDN, no font). */
const ICONS = {
  app: LifeBuoy,
  serial: SquareTerminal,
  vnc: Monitor,
  relay: Server,
  add: Plus,
  endpoints: Network,
  edit: Pencil,
  remove: Trash2,
  renew: TimerReset,
  disable: Ban,
  reconnect: RefreshCw,
  key: KeyRound,
  close: X,
  help: CircleHelp,
  search: Search,
  previous: ChevronUp,
  next: ChevronDown,
  smaller: ZoomOut,
  larger: ZoomIn,
  copy: Copy,
  paste: ClipboardPaste,
  save: Save,
  clear: Eraser,
  keyboard: Keyboard,
  typeText: Clipboard,
  scale: Expand,
  viewOnly: Eye,
  screenshot: Camera,
  fullscreen: Fullscreen,
  warning: TriangleAlert,
  light: Sun,
  dark: Moon,
  power: Power,
  zap: Zap,
  lock: Lock,
  shield: ShieldCheck,
  agent: HardDrive,
  record: CircleDot,
  hand: Hand,
  watch: Eye,
  play: Play,
  pause: Pause,
} satisfies Record<string, IconNode>;

export type IconName = keyof typeof ICONS;

/** A decorative SVG icon: hidden from screen readers (the control around it carries the name). */
export function icon(name: IconName, size = 16): SVGElement {
  return createElement(ICONS[name], { width: size, height: size, 'aria-hidden': 'true', focusable: 'false', class: 'icon' });
}

// UI text in English and Chinese. The choice is remembered in localStorage; the first visit
// follows navigator.language.

const KEY = "avatarbot.lang";

const en = {
  "nav.chat": "Chat", "nav.agents": "Agents", "nav.humans": "Digital humans", "nav.voices": "Voices",
  "nav.schedules": "Schedules", "nav.plugins": "Plugins", "nav.tasks": "Tasks", "nav.channels": "Channels",
  "nav.logout": "Log out", "nav.menu": "Menu",

  "common.name": "Name", "common.description": "Description", "common.status": "Status",
  "common.create": "Create", "common.save": "Save", "common.saved": "Saved", "common.cancel": "Cancel",
  "common.edit": "Edit", "common.delete": "Delete", "common.enable": "Enable", "common.disable": "Disable",
  "common.enabled": "Enabled", "common.empty": "Nothing here yet.",
  "common.confirmDelete": "Delete {name}?",
  "common.unavailable": "This server does not offer that feature yet.",
  "common.notAvailable": "{what}: not available on this server yet (its API is not installed). The rest of the console works.",

  "status.pending": "pending", "status.running": "running", "status.completed": "completed",
  "status.failed": "failed", "status.cancelled": "cancelled", "status.ok": "ok", "status.error": "error",
  "status.disabled": "disabled", "status.enabled": "enabled",

  "auth.title": "Sign in to avatarbot", "auth.setupTitle": "Welcome to avatarbot",
  "auth.setupHint": "No account exists yet. Create the first administrator account to get started.",
  "auth.registerTitle": "Create an account", "auth.login": "Email or username", "auth.email": "Email",
  "auth.username": "Username (optional)", "auth.password": "Password", "auth.signIn": "Sign in",
  "auth.create": "Create account", "auth.register": "Create an account", "auth.haveAccount": "I already have an account",

  "chat.title": "Chat", "chat.agent": "Agent", "chat.human": "Digital human",
  "chat.defaultAgent": "Default agent", "chat.defaultHuman": "Default (Grace)",
  "chat.noAgents": "Agents are not installed yet: /video still works.",
  "chat.placeholder": "Type a message, or /video 你好 …", "chat.send": "Send", "chat.clear": "New conversation",
  "chat.hint": "Try “/video Hello there” for a talking video, /help for commands, or just ask a question.",
  "chat.welcome": "Say something to the agent. “/video <text>” makes the digital human speak the text.",
  "chat.help": "/video <text> — the digital human speaks the text\n/voice <text> — audio only\n/agent <name> — switch agent\n/help — this list",
  "chat.videoQueued": "Making your video…", "chat.videoReady": "Here is your video:",
  "chat.videoUnavailable": "Video generation is not available on this server yet.",
  "chat.agentsUnavailable": "Agents are not installed on this server yet. Try “/video <text>”.",
  "chat.socketFailed": "Could not reach the agent (WebSocket closed).",

  "task.queued": "queued", "task.download": "Download", "task.resultError": "Could not load the result",

  "agents.list": "Agents", "agents.new": "New agent", "agents.edit": "Edit agent", "agents.prompt": "System prompt",
  "agents.capabilities": "Capabilities", "agents.brain": "Brain", "agents.default": "default",
  "agents.mcpServers": "MCP servers (JSON list; ******** keeps a stored secret)", "agents.mcpBadJson": "MCP servers: not a JSON list",

  "humans.list": "Digital humans", "humans.new": "New digital human", "humans.portrait": "Portrait",
  "humans.portraitHint": "A front-facing photo (JPEG, PNG, WebP) or a short video of the person (mp4, mov, webm, up to 60 s); one face.", "humans.video": "video", "humans.voice": "Voice",
  "humans.defaultVoice": "Default voice", "humans.mode": "Mode", "humans.preview": "Preview clip",
  "humans.previewText": "Hello, I am {name}.", "humans.builtin": "built-in",
  "humans.faceOk": "Saved: one face found in the portrait.",

  "voices.list": "Voice profiles", "voices.new": "New voice profile", "voices.backend": "Backend",
  "voices.voice": "Voice id", "voices.language": "Language", "voices.reference": "Reference audio",
  "voices.referenceHint": "A clean recording of 5–30 s (WAV, MP3, OGG).", "voices.sample": "Play sample",
  "voices.sampleText": "Hello! This is how I sound.",

  "schedules.list": "Schedules", "schedules.new": "New schedule", "schedules.cron": "Cron (minute hour day month weekday)",
  "schedules.timezone": "Time zone", "schedules.agent": "Agent", "schedules.prompt": "Prompt",
  "schedules.output": "Output", "schedules.text": "Text", "schedules.video": "Video",
  "schedules.platform": "Send to", "schedules.webhook": "Group-robot webhook", "schedules.chatId": "Chat id",
  "schedules.url": "Webhook URL", "schedules.target": "Target", "schedules.runNow": "Run now",
  "schedules.started": "Started", "schedules.when": "When", "schedules.next": "Next", "schedules.nextRuns": "Next runs", "schedules.badCron": "Invalid cron",
  "schedules.promptExample": "Summarise today's key news in three sentences.",

  "plugins.list": "Plugins", "plugins.version": "Version", "plugins.tools": "Tools", "plugins.reload": "Reload",
  "plugins.reloadAll": "Reload all plugins", "plugins.reloaded": "Reloaded", "plugins.install": "Install a plugin",
  "plugins.archive": "Plugin archive (.zip / .whl / .tar.gz)", "plugins.fromRegistry": "…or a name from the registry",
  "plugins.registryName": "plugin name", "plugins.installed": "Installed",
  "plugins.sha256": "SHA-256 of the archive", "plugins.sha256Hint": "Filled in automatically on https or localhost; otherwise paste the published digest.",
  "plugins.pickSomething": "Choose an archive or type a registry name.",

  "tasks.all": "All", "tasks.task": "Task", "tasks.progress": "Progress", "tasks.error": "Error",
  "tasks.created": "Created", "tasks.retry": "Retry", "tasks.cancel": "Cancel", "tasks.view": "View",
  "tasks.none": "No tasks yet.",

  "channels.feishu": "Feishu / Lark", "channels.wecom": "WeCom", "channels.webhookUrl": "Webhook URL to paste into the platform:",
  "channels.copy": "Copy", "channels.copied": "Copied", "channels.health": "Components",
  "channels.mode": "Mode", "channels.baseUrl": "API", "channels.lastEvent": "Last event",
  "channels.secondsAgo": "{s} s ago", "channels.connection": "Long connection", "channels.lastError": "Last error",
  "channels.longConnection": "Long-connection mode needs no public URL; for webhook mode use:",
  "channels.feishuSteps": "Feishu open platform → your app → Event subscriptions → Request URL. Set AVATARBOT_FEISHU__* to enable.",
  "channels.wecomSteps": "WeCom admin → your app → Receive messages → URL (with Token and EncodingAESKey). Set AVATARBOT_WECOM__* to enable.",
  "channels.wecom_bot": "WeCom AI bot", "channels.connectedSince": "Connected since", "channels.lastFrame": "Last frame",
  "channels.wecomBotSteps": "WeCom admin → AI bot (智能机器人) → API mode: long connection (Bot ID + Secret) or callback URL (Token + EncodingAESKey). Set AVATARBOT_WECOM_BOT__* to enable.",
};

const zh = {
  "nav.chat": "对话", "nav.agents": "智能体", "nav.humans": "数字人", "nav.voices": "声音",
  "nav.schedules": "定时任务", "nav.plugins": "插件", "nav.tasks": "任务", "nav.channels": "渠道",
  "nav.logout": "退出登录", "nav.menu": "菜单",

  "common.name": "名称", "common.description": "描述", "common.status": "状态",
  "common.create": "创建", "common.save": "保存", "common.saved": "已保存", "common.cancel": "取消",
  "common.edit": "编辑", "common.delete": "删除", "common.enable": "启用", "common.disable": "停用",
  "common.enabled": "启用", "common.empty": "暂无内容。",
  "common.confirmDelete": "确定删除 {name}？",
  "common.unavailable": "此服务器暂不支持该功能。",
  "common.notAvailable": "此服务器暂未提供「{what}」（对应 API 尚未安装），控制台其余功能正常。",

  "status.pending": "排队中", "status.running": "进行中", "status.completed": "已完成",
  "status.failed": "失败", "status.cancelled": "已取消", "status.ok": "正常", "status.error": "错误",
  "status.disabled": "未启用", "status.enabled": "已启用",

  "auth.title": "登录 avatarbot", "auth.setupTitle": "欢迎使用 avatarbot",
  "auth.setupHint": "还没有任何账号。请先创建第一个管理员账号。",
  "auth.registerTitle": "注册账号", "auth.login": "邮箱或用户名", "auth.email": "邮箱",
  "auth.username": "用户名（可选）", "auth.password": "密码", "auth.signIn": "登录",
  "auth.create": "创建账号", "auth.register": "注册新账号", "auth.haveAccount": "已有账号，去登录",

  "chat.title": "对话", "chat.agent": "智能体", "chat.human": "数字人",
  "chat.defaultAgent": "默认智能体", "chat.defaultHuman": "默认（Grace）",
  "chat.noAgents": "智能体尚未安装：/video 仍可使用。",
  "chat.placeholder": "输入消息，或 /video 你好 …", "chat.send": "发送", "chat.clear": "新对话",
  "chat.hint": "试试“/video 大家好”生成说话视频，/help 查看命令，或直接提问。",
  "chat.welcome": "和智能体说点什么吧。“/video <文字>” 让数字人说出这段文字。",
  "chat.help": "/video <文字> — 数字人说出文字\n/voice <文字> — 只生成语音\n/agent <名称> — 切换智能体\n/help — 显示本列表",
  "chat.videoQueued": "正在生成视频…", "chat.videoReady": "视频已生成：",
  "chat.videoUnavailable": "此服务器暂不支持生成视频。",
  "chat.agentsUnavailable": "此服务器尚未安装智能体。试试“/video <文字>”。",
  "chat.socketFailed": "无法连接智能体（WebSocket 已关闭）。",

  "task.queued": "排队中", "task.download": "下载", "task.resultError": "无法加载结果",

  "agents.list": "智能体列表", "agents.new": "新建智能体", "agents.edit": "编辑智能体", "agents.prompt": "系统提示词",
  "agents.capabilities": "能力", "agents.brain": "大脑", "agents.default": "默认",
  "agents.mcpServers": "MCP 服务器（JSON 列表；******** 表示保留已存的密钥）", "agents.mcpBadJson": "MCP 服务器：不是有效的 JSON 列表",

  "humans.list": "数字人列表", "humans.new": "新建数字人", "humans.portrait": "人像照片",
  "humans.portraitHint": "正面照片（JPEG、PNG、WebP）或本人的短视频（mp4、mov、webm，不超过 60 秒）；只含一张人脸。", "humans.video": "视频", "humans.voice": "声音",
  "humans.defaultVoice": "默认声音", "humans.mode": "模式", "humans.preview": "预览片段",
  "humans.previewText": "你好，我是{name}。", "humans.builtin": "内置",
  "humans.faceOk": "已保存：照片中检测到一张人脸。",

  "voices.list": "声音配置", "voices.new": "新建声音配置", "voices.backend": "引擎",
  "voices.voice": "音色 ID", "voices.language": "语言", "voices.reference": "参考音频",
  "voices.referenceHint": "5–30 秒的清晰录音（WAV、MP3、OGG）。", "voices.sample": "试听",
  "voices.sampleText": "你好！这是我的声音。",

  "schedules.list": "定时任务列表", "schedules.new": "新建定时任务", "schedules.cron": "Cron（分 时 日 月 周）",
  "schedules.timezone": "时区", "schedules.agent": "智能体", "schedules.prompt": "提示词",
  "schedules.output": "输出", "schedules.text": "文本", "schedules.video": "视频",
  "schedules.platform": "发送到", "schedules.webhook": "群机器人 Webhook", "schedules.chatId": "会话 ID",
  "schedules.url": "Webhook 地址", "schedules.target": "目标", "schedules.runNow": "立即运行",
  "schedules.started": "已开始", "schedules.when": "时间", "schedules.next": "下次", "schedules.nextRuns": "接下来的运行时间", "schedules.badCron": "Cron 表达式无效",
  "schedules.promptExample": "用三句话总结今天的重要新闻。",

  "plugins.list": "插件列表", "plugins.version": "版本", "plugins.tools": "工具", "plugins.reload": "重新加载",
  "plugins.reloadAll": "重新加载全部插件", "plugins.reloaded": "已重新加载", "plugins.install": "安装插件",
  "plugins.archive": "插件包（.zip / .whl / .tar.gz）", "plugins.fromRegistry": "…或插件仓库中的名称",
  "plugins.registryName": "插件名称", "plugins.installed": "已安装",
  "plugins.sha256": "插件包的 SHA-256", "plugins.sha256Hint": "在 https 或 localhost 下自动计算；否则请粘贴发布方提供的摘要。",
  "plugins.pickSomething": "请选择插件包或输入插件名称。",

  "tasks.all": "全部", "tasks.task": "任务", "tasks.progress": "进度", "tasks.error": "错误",
  "tasks.created": "创建时间", "tasks.retry": "重试", "tasks.cancel": "取消", "tasks.view": "查看",
  "tasks.none": "还没有任务。",

  "channels.feishu": "飞书", "channels.wecom": "企业微信", "channels.webhookUrl": "填写到平台的回调地址：",
  "channels.copy": "复制", "channels.copied": "已复制", "channels.health": "组件状态",
  "channels.mode": "模式", "channels.baseUrl": "接口地址", "channels.lastEvent": "最近事件",
  "channels.secondsAgo": "{s} 秒前", "channels.connection": "长连接", "channels.lastError": "最近错误",
  "channels.longConnection": "长连接模式无需公网地址；如用回调模式，请填写：",
  "channels.feishuSteps": "飞书开放平台 → 你的应用 → 事件订阅 → 请求地址。设置 AVATARBOT_FEISHU__* 后启用。",
  "channels.wecomSteps": "企业微信管理后台 → 你的应用 → 接收消息 → URL（以及 Token 和 EncodingAESKey）。设置 AVATARBOT_WECOM__* 后启用。",
  "channels.wecom_bot": "企业微信智能机器人", "channels.connectedSince": "连接开始于", "channels.lastFrame": "最近数据帧",
  "channels.wecomBotSteps": "企业微信管理后台 → 智能机器人 → API 模式：长连接（Bot ID 和 Secret）或回调 URL（Token 和 EncodingAESKey）。设置 AVATARBOT_WECOM_BOT__* 后启用。",
};

const DICTS = { en, zh };
const listeners = new Set();

function initialLang() {
  const saved = localStorage.getItem(KEY);
  if (saved && DICTS[saved]) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

let lang = initialLang();

export const getLang = () => lang;

export function setLang(next) {
  if (!DICTS[next] || next === lang) return;
  lang = next;
  localStorage.setItem(KEY, next);
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) { listeners.add(fn); }

/** The text for `key` in the current language, with {placeholders} filled in. */
export function t(key, vars = {}, fallback) {
  const text = DICTS[lang][key] ?? en[key] ?? fallback ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Fill elements marked data-i18n (text) / data-i18n-aria (aria-label) under `root`. */
export function applyI18n(root) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
}

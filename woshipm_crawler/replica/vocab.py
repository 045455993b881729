"""Word lists and sentence templates of the replica's invented Chinese articles.

Everything here is our own wording: the replica must not reproduce real articles. The lists are
large enough that two random articles share few character 5-grams (near-duplicate detection must
not see the whole corpus as one cluster).
"""

from __future__ import annotations

ROLES = (
    "产品经理", "运营同学", "交互设计师", "研发团队", "业务方", "新用户", "老用户", "决策者", "一线销售",
    "数据分析师", "增长团队", "品牌方", "中小商家", "平台方", "创业公司", "大厂团队", "客服团队", "内容创作者",
    "管理层", "采购负责人", "门店店长", "供应商", "渠道伙伴", "投资人", "项目经理", "测试同学", "架构师",
    "市场部", "财务团队", "一线骑手", "主播", "达人", "会员用户", "付费用户", "沉默用户", "流失用户",
)

DOMAINS = (
    "电商平台", "社交产品", "在线教育", "本地生活", "内容社区", "SaaS工具", "金融科技", "出行服务", "短视频",
    "直播带货", "企业协同", "医疗健康", "智能硬件", "游戏行业", "新零售", "跨境电商", "会员体系", "支付系统",
    "客服系统", "供应链", "外卖业务", "酒旅行业", "招聘平台", "知识付费", "车载系统", "智能家居", "二手交易",
    "社区团购", "物流仓储", "营销中台", "数据中台", "CRM系统", "ERP系统", "低代码平台", "AI助手", "大模型应用",
)

CONCEPTS = (
    "用户留存", "转化漏斗", "需求优先级", "信息架构", "交互路径", "埋点方案", "指标体系", "用户分层", "激励机制",
    "内容分发", "推荐策略", "权限模型", "定价策略", "冷启动", "私域流量", "会员权益", "北极星指标", "用户旅程",
    "反馈闭环", "灰度发布", "实验设计", "数据看板", "标签体系", "订单流程", "结算逻辑", "审核机制", "社区氛围",
    "商业模式", "获客成本", "生命周期价值", "复购率", "客单价", "核心场景", "用户心智", "产品定位", "竞争壁垒",
    "服务体验", "履约效率", "库存周转", "渠道策略", "品牌认知", "组织协同", "迭代节奏", "版本规划", "技术债务",
    "接口规范", "状态机", "异常处理", "风控规则", "合规要求", "隐私保护", "提示词设计", "知识库", "智能体",
    "多轮对话", "检索增强", "模型评测", "成本结构", "交付流程", "客户成功", "续费率", "线索转化", "销售漏斗",
)

VERBS = (
    "梳理", "拆解", "优化", "重构", "验证", "沉淀", "打通", "量化", "复盘", "评估", "设计", "落地", "迭代", "对齐",
    "衡量", "收敛", "推演", "校准", "搭建", "规划", "诊断", "细化", "串联", "简化", "抽象", "定义", "跟踪", "改造",
)

MANNERS = (
    "清晰地", "系统地", "快速", "持续", "低成本地", "分阶段", "有节奏地", "谨慎地", "反复", "尽早", "逐步", "务实地",
    "从底层", "围绕目标", "结合数据", "站在用户角度",
)

OUTCOMES = (
    "效率明显提升", "体验更加顺畅", "成本得到控制", "风险提前暴露", "团队形成共识", "用户愿意回来", "数据更可信",
    "决策更有依据", "口碑逐渐积累", "增长找到抓手", "流程不再卡顿", "边界变得清楚", "投入产出更合理", "问题闭环",
    "转化率稳步上升", "投诉量下降", "新功能被真正用起来", "方案可以复用", "节奏可控", "沟通成本降低",
)

CONNECTORS = (
    "因此", "同时", "但是", "换句话说", "更重要的是", "反过来看", "在实践中", "从结果看", "事实上", "与此同时",
    "进一步说", "归根结底", "换个角度", "具体来说", "不难发现", "需要注意的是",
)

NUMBERS = ("两", "三", "四", "五", "六", "七", "八", "十")

SENTENCES = (
    "{role}在{domain}里最常遇到的难题，往往不是{concept}本身，而是{concept2}没有被{verb}清楚。",
    "{connector}，{manner}{verb}{concept}，才能让{outcome}。",
    "如果只盯着{concept}，{role}很容易忽略{concept2}带来的连锁影响。",
    "以{domain}为例，{role}需要先{verb}{concept}，再决定{concept2}的投入节奏。",
    "{connector}，{concept}和{concept2}之间并不是非此即彼的关系。",
    "很多团队在{domain}项目中{verb}{concept}时，只做了一半就匆忙上线。",
    "我们曾经用{num}周时间{verb}{concept}，最终{outcome}。",
    "对{role}来说，{concept}的价值在于让{outcome}。",
    "{connector}，{role}应该把{concept}拆成{num}个可以独立验证的小问题。",
    "当{concept}的数据出现波动时，先别急着{verb}{concept2}，而是回到用户场景里找原因。",
    "{domain}的竞争已经从{concept}转向{concept2}，这对{role}提出了新的要求。",
    "一个好用的判断标准是：{concept}是否帮助{role}{manner}{verb}了{concept2}。",
    "在{domain}中，{concept}做得好的产品，通常也把{concept2}{verb}得很扎实。",
    "{role}和{role2}对{concept}的理解常常不一致，这正是需要{verb}的地方。",
    "{connector}，没有{concept}作为基础，{concept2}很难持续产生价值。",
    "从{num}个维度{verb}{concept}之后，{role}会发现问题其实集中在{concept2}上。",
    "不要把{concept}当成一次性的任务，它更像一个需要{manner}{verb}的长期工程。",
    "{role}可以先列出{concept}相关的关键节点，再逐一{verb}每个节点的{concept2}。",
    "回看过去一年的{domain}案例，{concept}始终是绕不开的话题。",
    "{connector}，{concept}的上限取决于{role}对{concept2}的认知深度。",
    "这套方法在{domain}里跑通之后，{outcome}，也为{concept}积累了经验。",
    "{role}需要回答的第一个问题是：{concept}到底为谁解决了什么问题？",
    "对比{num}家{domain}公司的做法，可以看到{concept}的差异主要来自{concept2}。",
    "{manner}{verb}{concept}，比一开始就追求完美方案更有效。",
    "在资源有限的情况下，{role}应优先{verb}{concept}，把{concept2}留到下一阶段。",
    "{concept}并不神秘，它本质上是{role}与{role2}之间关于{concept2}的一份约定。",
)

HEADINGS = (
    "{concept}为什么重要", "如何{verb}{concept}", "{domain}中的{concept}", "{concept}的常见误区", "从{concept}到{concept2}",
    "{role}的{concept}清单", "{concept}落地的{num}个步骤", "案例：{domain}的{concept}", "{concept}与{concept2}的关系",
    "复盘{concept}", "{concept}的评估方法", "写给{role}的建议",
)

TITLES = (
    "{domain}的{concept}，{role}该如何{verb}？", "{num}个步骤，{verb}你的{concept}", "从0到1{verb}{domain}的{concept}",
    "{concept}：被低估的{concept2}", "聊聊{domain}里的{concept}与{concept2}", "{role}必读：{concept}实战指南",
    "复盘：一次{domain}{concept}项目的得与失", "为什么你的{concept}总是做不好？", "{domain}下半场，拼的是{concept}",
    "{concept}方法论：{num}个关键问题", "一文讲透{domain}的{concept}", "{role}如何用{concept}驱动{concept2}",
    "{concept}设计中，最容易忽略的{num}个细节", "当{domain}遇上{concept}",
)

BOLD_LEADS = (
    "用户洞察", "核心结论", "关键动作", "业务目标", "落地难点", "解决思路", "衡量标准", "适用场景", "风险提示",
    "第一步", "第二步", "第三步", "注意", "举个例子",
)

PERSON_NAMES = (
    "青山", "木子", "阿飞", "老K", "夏末", "晨曦", "鹿鸣", "南风", "小满", "林间", "北岛", "远山", "知秋", "半夏",
    "子墨", "星河", "白露", "初一", "柚子", "阿泽", "大鱼", "凉白开", "西瓜", "橙子", "Alter", "Kevin", "Luna",
    "Echo", "Jason", "Mia", "Leo", "Ray", "Ada", "Bruce", "Yuki", "Sean", "产品小白", "运营老张", "设计师阿卡",
    "数据小王", "B端老李", "增长笔记", "三分钟产品", "一只鹅", "周周", "安安", "千寻", "墨白", "不二", "七七",
)

MEDIA_NAMES = (
    "科技前哨站", "增长观察社", "新消费研究所", "数字生活周刊", "产品沉思录", "商业晚自习", "零售内参", "出海笔记本",
    "智能时代观察", "营销方法库", "互联网放大镜", "流量研究院",
)

EDITOR_NAMES = ("沈菲", "王一鸣", "李可", "陈默", "周舟", "吴桐", "赵然", "孙晓", "钱多多", "郑也")

PROMO_COURSES = (
    ("bcpm", "B 端产品经理如何快速成长？", "从业务梳理到架构设计，系统掌握B端产品的核心方法与落地路径。"),
    ("aipm", "AI 产品经理实战训练营", "理解大模型能力边界，学会设计可落地的AI产品方案与评测体系。"),
    ("dataops", "数据驱动的运营增长课", "搭建指标体系、做好用户分层，用数据找到增长的真实抓手。"),
    ("uxd", "交互设计进阶：从需求到原型", "掌握交互路径设计、信息架构与可用性测试的完整流程。"),
)

PROMO_LINES = (
    "B端产品经理需要更多地关注客户的业务流程与决策链路，C端产品经理更关注用户的个人需求",
    "AI时代的产品经理，如何把大模型能力变成用户真正愿意用的功能",
    "从数据看板到增长实验，运营人必须掌握的数据分析方法",
    "交互设计师的成长路线：从画原型到定义体验标准",
)

CODE_SNIPPETS = (
    ("python", "def retention(cohort, day):\n    active = [u for u in cohort if u.active_on(day)]\n"
               "    return len(active) / max(len(cohort), 1)\n\nprint(retention(users, 7))"),
    ("sql", "SELECT channel, COUNT(DISTINCT user_id) AS uv\nFROM events\nWHERE event = 'pay' AND amount > 0\n"
            "GROUP BY channel\nORDER BY uv DESC;"),
    ("javascript", "function track(event, props) {\n  if (!props || props.id < 0) return;\n"
                   "  window.analytics && window.analytics.push([event, props]);\n}"),
)

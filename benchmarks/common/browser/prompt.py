"""WebArena's two-shot CoT prompt over the accessibility tree (``p_cot_id_actree_2s``), as a chat.

Upstream sends the intro as the system message, the two examples as user/assistant pairs, and
each turn as ``OBSERVATION / URL / OBJECTIVE / PREVIOUS ACTION``; the text below is WebArena's
(Apache-2.0, web-arena-x/webarena). Here the episode is one growing chat: each observation is the
next user turn (upstream re-prompts with the current observation only), a documented deviation.
The Homepage paragraph is WebArena-only; MiniWoB++ tasks have no homepage.
"""

from __future__ import annotations

from agentflan_eval.benchmarks.common.browser.actions import ANSWER_PHRASE
from agentflan_eval.records import Message

MAX_OBS_CHARS = 7680  # WebArena cuts the observation at 1,920 tokens; ~4 characters per token

_INTRO = """You are an autonomous intelligent agent tasked with navigating a web browser. You will be given web-based tasks. These tasks will be accomplished through the use of specific actions you can issue.

Here's the information you'll have:
The user's objective: This is the task you're trying to complete.
The current web page's accessibility tree: This is a simplified representation of the webpage, providing key information.
The current web page's URL: This is the page you're currently navigating.
The open tabs: These are the tabs you have open.
The previous action: This is the action you just performed. It may be helpful to track your progress.

The actions you can perform fall into several categories:

Page Operation Actions:
`click [id]`: This action clicks on an element with a specific id on the webpage.
`type [id] [content] [press_enter_after=0|1]`: Use this to type the content into the field with id. By default, the "Enter" key is pressed after typing unless press_enter_after is set to 0.
`hover [id]`: Hover over an element with id.
`press [key_comb]`:  Simulates the pressing of a key combination on the keyboard (e.g., Ctrl+v).
`scroll [direction=down|up]`: Scroll the page up or down.

Tab Management Actions:
`new_tab`: Open a new, empty browser tab.
`tab_focus [tab_index]`: Switch the browser's focus to a specific tab using its index.
`close_tab`: Close the currently active tab.

URL Navigation Actions:
`goto [url]`: Navigate to a specific URL.
`go_back`: Navigate to the previously viewed page.
`go_forward`: Navigate to the next page (if a previous 'go_back' action was performed).

Completion Action:
`stop [answer]`: Issue this action when you believe the task is complete. If the objective is to find a text-based answer, provide the answer in the bracket. If you believe the task is impossible to complete, provide the answer as "N/A" in the bracket.
{homepage}
To be successful, it is very important to follow the following rules:
1. You should only issue an action that is valid given the current observation
2. You should only issue one action at a time.
3. You should follow the examples to reason step by step and then issue the next action.
4. Generate the action in the correct format. Start with a "{phrase}" phrase, followed by action inside ``````. For example, "{phrase} ```click [1234]```".
5. Issue stop action when you think you have achieved the objective. Don't generate anything after stop."""

HOMEPAGE = """
Homepage:
If you want to visit other websites, check out the homepage at http://homepage.com. It has a list of websites you can visit.
http://homepage.com/password.html lists all the account name and password for the websites. You can use them to log in to the websites.
"""

_TEMPLATE = (
    "OBSERVATION:\n{observation}\nURL: {url}\nOBJECTIVE: {objective}\nPREVIOUS ACTION: {previous_action}"
)

_EXAMPLES = (
    (
        _TEMPLATE.format(
            observation="[1744] link 'HP CB782A#ABA 640 Inkjet Fax Machine (Renewed)'\n\t\t[1749] StaticText '$279.49'\n"
            "\t\t[1757] button 'Add to Cart'\n\t\t[1760] button 'Add to Wish List'\n"
            "\t\t[1761] button 'Add to Compare'",
            url="http://onestopmarket.com/office-products/office-electronics.html",
            objective="What is the price of HP Inkjet Fax Machine",
            previous_action="None",
        ),
        (
            "Let's think step-by-step. This page list the information of HP Inkjet Fax Machine, which is the product "
            "identified in the objective. Its price is $279.49. I think I have achieved the objective. I will issue the "
            f"stop action with the answer. {ANSWER_PHRASE} ```stop [$279.49]```"
        ),
    ),
    (
        _TEMPLATE.format(
            observation="[164] textbox 'Search' focused: True required: False\n[171] button 'Go'\n"
            "[174] link 'Find directions between two points'\n[212] heading 'Search Results'\n"
            "[216] button 'Close'",
            url="http://openstreetmap.org",
            objective="Show me the restaurants near CMU",
            previous_action="None",
        ),
        (
            "Let's think step-by-step. This page has a search box whose ID is [164]. According to the nominatim rule of "
            'openstreetmap, I can search for the restaurants near a location by "restaurants near". I can submit my '
            f"typing by pressing the Enter afterwards. {ANSWER_PHRASE} ```type [164] [restaurants near CMU] [1]```"
        ),
    ),
)


def turn(observation: str, url: str, objective: str, previous_action: str) -> str:
    """One user turn; the observation is cut at ``MAX_OBS_CHARS``."""
    return _TEMPLATE.format(
        observation=observation[:MAX_OBS_CHARS], url=url, objective=objective, previous_action=previous_action
    )


def opening(first_turn: str, homepage: bool) -> list[Message]:
    intro = _INTRO.format(homepage=HOMEPAGE if homepage else "", phrase=ANSWER_PHRASE)
    msgs = [Message(role="system", content=intro)]
    for user, assistant in _EXAMPLES:
        msgs += [Message(role="user", content=user), Message(role="assistant", content=assistant)]
    return [*msgs, Message(role="user", content=first_turn)]

"""The tables behind model/scenes.py: colours, times, grounds, things and their sizes, the sky and ground colours,
the caption phrasings and synonyms (v1 and v2), and the edit instruction templates. Plain data; scenes.py
re-exports every name (S.COLORS, S.RECOLOR, ... as before). The v1 tables are frozen: the v1 data, its held-out set
and its 111-word vocabulary are built from them."""

COLORS = {
    "red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (245, 220, 50), "green": (50, 170, 60),
    "blue": (40, 80, 220), "purple": (140, 60, 190), "pink": (245, 130, 180), "white": (245, 245, 245),
    "black": (20, 20, 20), "gray": (128, 128, 128), "brown": (130, 80, 40),
}
COLOR_NAMES = list(COLORS)
COLOR_SYN = {"gray": ["gray", "grey"]}
TIMES = ["day", "sunset", "night"]
GROUNDS = ["grass", "sea", "desert", "snow"]
OBJECTS = ["house", "tree", "mountain", "circle", "square", "triangle"]
POSITIONS = ["left", "center", "right"]
POS_X = {"left": 0.2, "center": 0.5, "right": 0.8}
# the wider vocabulary (issue 16, "data v2"): more things, sizes, counts and plain backgrounds. The v1 tables above
# and below are unchanged, so v1 data, its held-out set and its 111-word vocabulary stay exactly as they were.
NEW_OBJECTS = ["star", "heart", "flower", "car", "boat", "fish", "bird"]
ALL_OBJECTS = OBJECTS + NEW_OBJECTS
SIZES = ["small", "big"]
BG_RGB = dict(COLORS)
COUNTS = {2: "two", 3: "three"}

SKY = {  # top colour, horizon colour
    "day": ((70, 130, 220), (165, 205, 240)),
    "sunset": ((70, 55, 125), (250, 145, 70)),
    "night": ((5, 8, 30), (28, 34, 75)),
}
GROUND_RGB = {"grass": (70, 160, 60), "sea": (30, 90, 170), "desert": (222, 192, 122), "snow": (238, 240, 246)}
GROUND_DIM = {"day": 1.0, "sunset": 0.8, "night": 0.45}
OBJ_DIM = {"day": 1.0, "sunset": 0.9, "night": 0.7}
HORIZON = 0.6
BASE = 0.82

# caption phrasings
POS_PHRASE = {
    "left": ["on the left", "on the left side", "at the left", "to the left"],
    "center": ["in the center", "in the middle", "in the centre", "at the center"],
    "right": ["on the right", "on the right side", "at the right", "to the right"],
}
TIME_PHRASE = {
    "day": ["during the day", "in the daytime", "at noon", "by day"],
    "sunset": ["at sunset", "at dusk", "in the evening", "during sunset"],
    "night": ["at night", "at nighttime", "in the night", "during the night"],
}
GROUND_PHRASE = {
    "grass": ["on grass", "on a meadow", "in a grassy field", "on the grass"],
    "sea": ["by the sea", "on the sea", "over the ocean", "on water"],
    "desert": ["in the desert", "on sand", "in the dunes", "on desert sand"],
    "snow": ["on snow", "in the snow", "on a snowy field", "on snowy ground"],
}
SKY_PHRASE = {
    "sun": ["the sun", "a sun", "a bright sun"],
    "moon": ["the moon", "a moon", "a crescent moon"],
    "stars": ["stars", "a starry sky", "many stars"],
    "clouds": ["clouds", "some clouds", "a cloudy sky"],
}
PREFIX = ["", "", "", "a picture of ", "an image of ", "a drawing of ", "a scene with ", "a photo of "]
OBJ_SYN = {"house": ["house", "house", "home", "cottage"], "tree": ["tree"], "mountain": ["mountain", "mountain", "hill"],
           "circle": ["circle", "circle", "ball", "disc"], "square": ["square", "square", "box", "block"],
           "triangle": ["triangle"]}

# v2 caption phrasings
OBJ_SYN2 = dict(OBJ_SYN, star=["star"], heart=["heart"], flower=["flower"], car=["car"], boat=["boat"],
                fish=["fish"], bird=["bird"])
PLURAL = {"house": "houses", "tree": "trees", "mountain": "mountains", "circle": "circles", "square": "squares",
          "triangle": "triangles", "heart": "hearts", "flower": "flowers", "car": "cars", "boat": "boats",
          "fish": "fish", "bird": "birds"}
SIZE_WORD = {"small": ["small"], "big": ["big"]}
BG_PHRASE = ["on a {c} background", "on a plain {c} background", "against a {c} background", "with a {c} background",
             "on {c}", "{c} background"]

# edit instruction templates
TIME_EDIT = ["make it {t}", "turn it into {t}", "change the time to {t}", "make it {t} now"]
TIME_WORD = {"day": ["day", "daytime"], "sunset": ["sunset", "dusk", "evening"], "night": ["night", "nighttime"]}
RECOLOR = ["make the {o} {c}", "change the color of the {o} to {c}", "paint the {o} {c}", "turn the {o} {c}"]
REMOVE = ["remove the {o}", "delete the {o}", "take away the {o}", "get rid of the {o}"]
ADD = ["add {x}", "put {x}", "place {x}", "draw {x}"]
GROUND_EDIT = ["change the ground to {g}", "make the ground {g}", "replace the ground with {g}", "turn the ground into {g}"]
GROUND_WORD = {"grass": ["grass", "a meadow"], "sea": ["sea", "water", "ocean"], "desert": ["desert", "sand"],
               "snow": ["snow"]}
MULTI = ["put the {o} from image 2 into image 1", "add the {o} from image 2 to image 1",
         "place the {o} of image 2 in image 1", "copy the {o} from image 2 into image 1"]

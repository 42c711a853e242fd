// One colour per genre, used by the bars, the timeline, the waveform and the legend. Chosen to stay
// apart from each other and to carry white text.
export const GENRE_COLOURS = {
  blues: "#2f6db5", classical: "#a27b0a", country: "#b05a1a", disco: "#c2358f", hiphop: "#6b3fc4",
  jazz: "#1f8a7e", metal: "#3b3f4a", pop: "#d6345c", reggae: "#2e8b3d", rock: "#c0262d",
};

export const colourOf = (genre) => GENRE_COLOURS[genre] || "#6b7280";

// The tagger's 50 last.fm tags, sorted into kinds for the chips.
const TAG_KINDS = {
  era: ["60s", "70s", "80s", "90s", "00s", "oldies"],
  mood: ["beautiful", "chillout", "chill", "mellow", "easy listening", "sexy", "catchy", "party", "sad", "happy"],
  sound: ["female vocalists", "female vocalist", "male vocalists", "instrumental", "acoustic", "guitar"],
};

export function tagKind(tag) {
  const name = tag.toLowerCase();
  for (const [kind, tags] of Object.entries(TAG_KINDS)) if (tags.includes(name)) return kind;
  return "style";
}

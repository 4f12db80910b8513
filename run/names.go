package run

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"
	"strconv"

	"github.com/containerd/errdefs"
)

// validName is Docker's rule for container names.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func checkName(name string) error {
	if !validName.MatchString(name) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	return nil
}

// newID returns a random 64-hex container ID whose short form is not all
// digits (a short ID that parses as a number confuses tools).
func newID() string {
	var b [32]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("read random: %v", err))
		}
		id := hex.EncodeToString(b[:])
		if _, err := strconv.ParseUint(id[:12], 10, 64); err != nil {
			return id
		}
	}
}

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(fmt.Sprintf("read random: %v", err))
	}
	return int(v.Int64())
}

// randomName returns a docker-style "adjective_surname"; after a few
// collisions (taken reports them) it appends a digit as Docker does.
func randomName(taken func(string) bool) string {
	for i := 0; ; i++ {
		name := adjectives[randInt(len(adjectives))] + "_" + surnames[randInt(len(surnames))]
		if i >= 6 {
			name += strconv.Itoa(randInt(10))
		}
		if i > 1000 {
			name += "_" + newID()[:8]
		}
		// Docker never names a container boring_wozniak.
		if name == "boring_wozniak" {
			continue
		}
		if !taken(name) {
			return name
		}
	}
}

var adjectives = []string{
	"admiring", "adoring", "affectionate", "agitated", "amazing", "angry",
	"awesome", "beautiful", "blissful", "bold", "boring", "brave", "busy",
	"charming", "clever", "compassionate", "competent", "condescending",
	"confident", "cool", "cranky", "crazy", "dazzling", "determined",
	"distracted", "dreamy", "eager", "ecstatic", "elastic", "elated",
	"elegant", "eloquent", "epic", "exciting", "fervent", "festive",
	"flamboyant", "focused", "friendly", "frosty", "funny", "gallant",
	"gifted", "goofy", "gracious", "great", "happy", "hardcore", "heuristic",
	"hopeful", "hungry", "infallible", "inspiring", "intelligent",
	"interesting", "jolly", "jovial", "keen", "kind", "laughing", "loving",
	"lucid", "magical", "modest", "musing", "mystifying", "naughty",
	"nervous", "nice", "nifty", "nostalgic", "objective", "optimistic",
	"peaceful", "pedantic", "pensive", "practical", "priceless", "quirky",
	"quizzical", "recursing", "relaxed", "reverent", "romantic", "sad",
	"serene", "sharp", "silly", "sleepy", "stoic", "strange", "stupefied",
	"suspicious", "sweet", "tender", "thirsty", "trusting", "unruffled",
	"upbeat", "vibrant", "vigilant", "vigorous", "wizardly", "wonderful",
	"xenodochial", "youthful", "zealous", "zen",
}

// surnames are scientists and engineers, as in Docker's generator.
var surnames = []string{
	"agnesi", "albattani", "allen", "almeida", "antonelli", "archimedes",
	"ardinghelli", "aryabhata", "austin", "babbage", "banach", "banzai",
	"bardeen", "bartik", "bassi", "beaver", "bell", "benz", "bhabha",
	"bhaskara", "black", "blackburn", "blackwell", "bohr", "booth", "borg",
	"bose", "bouman", "boyd", "brahmagupta", "brattain", "brown", "buck",
	"burnell", "cannon", "carson", "cartwright", "carver", "cerf",
	"chandrasekhar", "chaplygin", "chatelet", "chatterjee", "chaum",
	"chebyshev", "clarke", "cohen", "colden", "cori", "cray", "curie",
	"curran", "darwin", "davinci", "dewdney", "dhawan", "diffie", "dijkstra",
	"dirac", "driscoll", "dubinsky", "easley", "edison", "einstein",
	"elbakyan", "elgamal", "elion", "ellis", "engelbart", "euclid", "euler",
	"faraday", "feistel", "fermat", "fermi", "feynman", "franklin", "gagarin",
	"galileo", "galois", "ganguly", "gates", "gauss", "germain", "goldberg",
	"goldstine", "goldwasser", "golick", "goodall", "gould", "greider",
	"grothendieck", "haibt", "hamilton", "haslett", "hawking", "heisenberg",
	"hellman", "hermann", "herschel", "hertz", "heyrovsky", "hodgkin",
	"hofstadter", "hoover", "hopper", "hugle", "hypatia", "ishizaka",
	"jackson", "jang", "jemison", "jennings", "jepsen", "johnson", "joliot",
	"jones", "kalam", "kapitsa", "kare", "keldysh", "keller", "kepler",
	"khayyam", "khorana", "kilby", "kirch", "knuth", "kowalevski", "lalande",
	"lamarr", "lamport", "leakey", "leavitt", "lederberg", "lehmann", "lewin",
	"lichterman", "liskov", "lovelace", "lumiere", "mahavira", "margulis",
	"matsumoto", "maxwell", "mayer", "mccarthy", "mcclintock", "mclaren",
	"mclean", "mcnulty", "meitner", "mendel", "mendeleev", "meninsky",
	"merkle", "mestorf", "mirzakhani", "montalcini", "moore", "morse",
	"moser", "murdock", "napier", "nash", "neumann", "newton", "nightingale",
	"nobel", "noether", "northcutt", "noyce", "panini", "pare", "pascal",
	"pasteur", "payne", "perlman", "pike", "poincare", "poitras", "proskuriakova",
	"ptolemy", "raman", "ramanujan", "rhodes", "ride", "ritchie", "robinson",
	"roentgen", "rosalind", "rubin", "saha", "sammet", "sanderson", "satoshi",
	"shamir", "shannon", "shaw", "shirley", "shockley", "shtern", "sinoussi",
	"snyder", "solomon", "spence", "stonebraker", "sutherland", "swanson",
	"swartz", "swirles", "taussig", "tesla", "tharp", "thompson", "torvalds",
	"tu", "turing", "varahamihira", "vaughan", "villani", "visvesvaraya",
	"volhard", "wescoff", "wilbur", "wiles", "williams", "williamson",
	"wilson", "wing", "wozniak", "wright", "wu", "yalow", "yonath", "zhukovsky",
}

"""Facts of public knowledge for probing a real language model: (subject, relation, object).

Example::

    from models.data.known_facts import FACTS, RELATIONS, prompt_for

    fact = FACTS[0]                               # Fact(subject='France', relation='capital', object='Paris')
    RELATIONS[fact.relation].templates[0]         # 'The capital of {} is the city of'
    prompt_for(fact)                              # 'The capital of France is the city of'
    prompt_for(fact, RELATIONS["capital"].held_out)  # the paraphrase template, never used to select facts

Written by hand for this project (no data set is downloaded): 636 facts over ten relations
(capital, language, currency, continent of a country; home country of a company; city of a
landmark; author of a book; instrument of a musician; sport of an athlete; occupation of a
person). Each relation has at least three templates with one ``{}`` for the subject; a
prompt ends right before the object, which follows after a space (``" Paris"``). The last
template of each relation is *held out*: facts are selected (the model must answer them) on
the first template only, and the held-out one tests whether an edit generalises to a
paraphrase. Objects are named one way throughout a relation: "football" is association
football, "American football" the other; "euro", not "Euro".

``FAMILIES`` lists the two-word person subjects ("First Last") whose first or last name
another such subject shares ("Michael Jordan", "Michael Phelps"; "Serena Williams",
"Robin Williams"), for the AND-gate neuron test: a neuron that stores "Michael Jordan plays
basketball" should fire on the full name far more than on either name with another partner.
"""

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Relation:
    name: str
    templates: tuple[str, ...]  # each with one "{}"; templates[-1] is held out

    @property
    def main(self) -> str:
        return self.templates[0]

    @property
    def held_out(self) -> str:
        return self.templates[-1]


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    object: str


# Main templates (the first of each) were chosen on SmolLM2-135M by how often its greedy next token is *some*
# object of the relation, over all of the relation's facts, never fact by fact. A template may open with one worked
# example (the currency, instrument and occupation ones do: without it the model answers "Swiss" for the franc or
# "famous as a master"); the example's subject is not a fact of the relation.
RELATIONS: dict[str, Relation] = {r.name: r for r in (
    Relation("capital", (
        "The capital of {} is the city of",
        "The capital city of {} is",
        "{}'s capital city is",
        "The government of {} sits in the city of",
    )),
    Relation("language", (
        "In {}, the official language is",
        "The main language of {} is",
        "The official language of {} is",
        "Most people in {} speak the language called",
    )),
    Relation("currency", (
        "Currency of the United States: dollar. Currency of {}:",
        "The currency of the United States is the dollar, and the currency of {} is the",
        "The United States uses the dollar, and {} uses the",
        "In the United States people pay in dollars; in {} they pay in the local currency, the",
    )),
    Relation("continent", (
        "{} lies on the continent of",
        "{} is a country in the continent of",
        "{} is located in the continent of",
    )),
    Relation("company", (
        "The company {} comes from the country of",
        "The company {} is based in the country of",
        "{} is a famous company from the country of",
        "The company {} is from the country of",
    )),
    Relation("landmark", (  # the subject follows a verb: "the Eiffel Tower", "Big Ben" both read right
        "You can see {} in the city of",
        "People visit {} in the city of",
        "Tourists travel to see {} in",
    )),
    Relation("author", (
        "The famous book {} was written by",
        "The book {} was written by",
        "The famous novel {} was written by",
    )),
    Relation("instrument", (
        "Yehudi Menuhin played the violin. {} played the",
        "{} is a musician who plays the",
        "{} is famous for playing the",
        "Yehudi Menuhin is famous for playing the violin, and {} is famous for playing the",
    )),
    Relation("sport", (
        "{} is a famous player of the sport of",
        "{} won many titles in the sport of",
        "{} is a professional athlete in the sport of",
    )),
    Relation("occupation", (
        "Shakespeare was a famous playwright, and {} was a famous",
        "Occupation of Shakespeare: playwright. Occupation of {}:",
        "Profession of Shakespeare: playwright. Profession of {}:",
    )),
)}


def _table(relation: str, text: str) -> tuple[Fact, ...]:
    """``"subject: object; subject: object; ..."`` as facts of ``relation`` (a compact way to write a table)."""
    pairs = [item.split(":") for item in text.replace("\n", " ").split(";") if item.strip()]
    return tuple(Fact(subject.strip(), relation, obj.strip()) for subject, obj in pairs)


# Left out on purpose, as ambiguous: countries with two capitals or a capital in dispute or moving (Netherlands,
# Switzerland, South Africa, Bolivia, Indonesia, Israel, Sudan), several equal official languages (India, Switzerland,
# Ireland, Canada), currencies with two names or changing (China's renminbi/yuan, Croatia, Bulgaria), countries
# named with "the" (they break "The capital of {}"), transcontinental countries, companies with a disputed home,
# musicians who play several instruments equally, people known for two occupations.
FACTS: tuple[Fact, ...] = (
    *_table("capital", """
        France: Paris; Germany: Berlin; Italy: Rome; Spain: Madrid; Portugal: Lisbon; Ireland: Dublin; Russia: Moscow;
        Japan: Tokyo; China: Beijing; India: New Delhi; Egypt: Cairo; Kenya: Nairobi; Greece: Athens; Turkey: Ankara;
        Poland: Warsaw; Austria: Vienna; Hungary: Budapest; Sweden: Stockholm; Norway: Oslo; Denmark: Copenhagen;
        Finland: Helsinki; Iceland: Reykjavik; Belgium: Brussels; Canada: Ottawa; Brazil: Brasilia;
        Argentina: Buenos Aires; Chile: Santiago; Peru: Lima; Colombia: Bogota; Venezuela: Caracas; Cuba: Havana;
        Australia: Canberra; New Zealand: Wellington; South Korea: Seoul; North Korea: Pyongyang; Thailand: Bangkok;
        Vietnam: Hanoi; Pakistan: Islamabad; Iran: Tehran; Iraq: Baghdad; Saudi Arabia: Riyadh; Syria: Damascus;
        Lebanon: Beirut; Jordan: Amman; Afghanistan: Kabul; Nigeria: Abuja; Ghana: Accra; Ethiopia: Addis Ababa;
        Morocco: Rabat; Algeria: Algiers; Tunisia: Tunis; Libya: Tripoli; Romania: Bucharest; Bulgaria: Sofia;
        Serbia: Belgrade; Croatia: Zagreb; Nepal: Kathmandu; Bangladesh: Dhaka; Mongolia: Ulaanbaatar; Qatar: Doha;
        Zimbabwe: Harare; Uganda: Kampala; Senegal: Dakar; Ecuador: Quito; Uruguay: Montevideo; Jamaica: Kingston;
        Scotland: Edinburgh; Wales: Cardiff; Slovakia: Bratislava; Latvia: Riga; Lithuania: Vilnius; Estonia: Tallinn;
        Belarus: Minsk; Armenia: Yerevan; Azerbaijan: Baku; Uzbekistan: Tashkent; Cyprus: Nicosia; Albania: Tirana;
        Cambodia: Phnom Penh; England: London
    """),
    *_table("language", """
        France: French; Germany: German; Italy: Italian; Spain: Spanish; Portugal: Portuguese; Brazil: Portuguese;
        Mexico: Spanish; Argentina: Spanish; Japan: Japanese; China: Chinese; Russia: Russian; Greece: Greek;
        Turkey: Turkish; Poland: Polish; Sweden: Swedish; Norway: Norwegian; Denmark: Danish; Finland: Finnish;
        Hungary: Hungarian; Romania: Romanian; Bulgaria: Bulgarian; Ukraine: Ukrainian; Israel: Hebrew;
        Saudi Arabia: Arabic; Egypt: Arabic; Syria: Arabic; Jordan: Arabic; Morocco: Arabic; Thailand: Thai;
        Vietnam: Vietnamese; South Korea: Korean; North Korea: Korean; Indonesia: Indonesian; Malaysia: Malay;
        Bangladesh: Bengali; Chile: Spanish; Colombia: Spanish; Peru: Spanish; Cuba: Spanish; Venezuela: Spanish;
        Austria: German; Iceland: Icelandic; Croatia: Croatian; Serbia: Serbian; Slovakia: Slovak; Latvia: Latvian;
        Lithuania: Lithuanian; Estonia: Estonian; Albania: Albanian; Armenia: Armenian; Mongolia: Mongolian;
        Nepal: Nepali; Ethiopia: Amharic; Angola: Portuguese; Mozambique: Portuguese; Ecuador: Spanish;
        Uruguay: Spanish; Cambodia: Khmer; Laos: Lao; Iran: Persian
    """),
    *_table("currency", """
        Japan: yen; India: rupee; Russia: ruble; Mexico: peso; Brazil: real; South Africa: rand; South Korea: won;
        Switzerland: franc; Sweden: krona; Norway: krone; Denmark: krone; Poland: zloty; Hungary: forint;
        Turkey: lira; Israel: shekel; Thailand: baht; Vietnam: dong; Indonesia: rupiah; Malaysia: ringgit;
        Pakistan: rupee; Bangladesh: taka; Saudi Arabia: riyal; Egypt: pound; Nigeria: naira; Kenya: shilling;
        Argentina: peso; Chile: peso; Colombia: peso; Peru: sol; Canada: dollar; Australia: dollar;
        New Zealand: dollar; Iran: rial; Ukraine: hryvnia; Romania: leu; Serbia: dinar; Jordan: dinar;
        Kuwait: dinar; Germany: euro; France: euro; Italy: euro; Spain: euro; Greece: euro; Portugal: euro;
        Ireland: euro; Finland: euro; Austria: euro; Belgium: euro; Iceland: krona; Singapore: dollar;
        Jamaica: dollar; Cuba: peso; Philippines: peso
    """),
    *_table("continent", """
        France: Europe; Germany: Europe; Italy: Europe; Spain: Europe; Portugal: Europe; Ireland: Europe;
        Poland: Europe; Sweden: Europe; Norway: Europe; Finland: Europe; Austria: Europe; Hungary: Europe;
        Belgium: Europe; Greece: Europe; Romania: Europe; Japan: Asia; China: Asia; India: Asia; Thailand: Asia;
        Vietnam: Asia; Mongolia: Asia; Nepal: Asia; Pakistan: Asia; Bangladesh: Asia; Cambodia: Asia; Laos: Asia;
        South Korea: Asia; Indonesia: Asia; Malaysia: Asia; Afghanistan: Asia; Kenya: Africa; Nigeria: Africa;
        Ghana: Africa; Ethiopia: Africa; Morocco: Africa; Algeria: Africa; Senegal: Africa; Uganda: Africa;
        Zimbabwe: Africa; Angola: Africa; Mozambique: Africa; Madagascar: Africa; Cameroon: Africa; Mali: Africa;
        Somalia: Africa; Brazil: South America; Argentina: South America; Chile: South America;
        Peru: South America; Colombia: South America; Venezuela: South America; Ecuador: South America;
        Uruguay: South America; Paraguay: South America; Bolivia: South America; Canada: North America;
        Mexico: North America
    """),
    *_table("company", """
        Toyota: Japan; Honda: Japan; Sony: Japan; Nintendo: Japan; Mazda: Japan; Suzuki: Japan; Canon: Japan;
        Panasonic: Japan; Toshiba: Japan; Yamaha: Japan; Mitsubishi: Japan; Nissan: Japan; Subaru: Japan;
        Casio: Japan; Samsung: South Korea; Hyundai: South Korea; Kia: South Korea; LG: South Korea;
        BMW: Germany; Volkswagen: Germany; Porsche: Germany; Audi: Germany; Adidas: Germany; Siemens: Germany;
        Bosch: Germany; Lufthansa: Germany; Puma: Germany; Bayer: Germany; Ferrari: Italy; Fiat: Italy;
        Lamborghini: Italy; Gucci: Italy; Prada: Italy; Maserati: Italy; Renault: France; Peugeot: France;
        Chanel: France; Michelin: France; Citroen: France; Nokia: Finland; Volvo: Sweden; Ericsson: Sweden;
        Spotify: Sweden; Saab: Sweden; Nestle: Switzerland; Rolex: Switzerland; Lego: Denmark; Carlsberg: Denmark;
        Huawei: China; Alibaba: China; Lenovo: China; Tencent: China; Infosys: India; Zara: Spain;
        Skoda: Czech Republic
    """),
    *_table("landmark", """
        the Eiffel Tower: Paris; the Colosseum: Rome; Big Ben: London; the Statue of Liberty: New York;
        the Golden Gate Bridge: San Francisco; the Kremlin: Moscow; the Taj Mahal: Agra;
        the Brandenburg Gate: Berlin; the Acropolis: Athens; the Sagrada Familia: Barcelona; the Louvre: Paris;
        Buckingham Palace: London; Tower Bridge: London; the Forbidden City: Beijing; Red Square: Moscow;
        the Burj Khalifa: Dubai; the Space Needle: Seattle; the Empire State Building: New York;
        the Hollywood Sign: Los Angeles; the Alhambra: Granada; the Parthenon: Athens; the Trevi Fountain: Rome;
        the Pantheon: Rome; the Arc de Triomphe: Paris; Westminster Abbey: London;
        the Petronas Towers: Kuala Lumpur; the CN Tower: Toronto; the Gateway Arch: St. Louis;
        the White House: Washington; the Lincoln Memorial: Washington; Times Square: New York;
        Central Park: New York; the Hagia Sophia: Istanbul; the Blue Mosque: Istanbul; the Charles Bridge: Prague;
        the Rijksmuseum: Amsterdam; the Anne Frank House: Amsterdam; the Atomium: Brussels;
        the Rialto Bridge: Venice; the Uffizi Gallery: Florence; the Ponte Vecchio: Florence;
        the Prado Museum: Madrid; the Hermitage Museum: Saint Petersburg; Tiananmen Square: Beijing;
        Table Mountain: Cape Town; the Golden Temple: Amritsar; the Gateway of India: Mumbai;
        Alcatraz: San Francisco; Graceland: Memphis; the Liberty Bell: Philadelphia; Fenway Park: Boston;
        Old Trafford: Manchester; Camp Nou: Barcelona; Wembley Stadium: London; the Wailing Wall: Jerusalem;
        Trafalgar Square: London; the Champs-Elysees: Paris; Notre-Dame Cathedral: Paris;
        the Sistine Chapel: Vatican City
    """),
    *_table("author", """
        Hamlet: William Shakespeare; Macbeth: William Shakespeare; Romeo and Juliet: William Shakespeare;
        Pride and Prejudice: Jane Austen; Emma: Jane Austen; Oliver Twist: Charles Dickens;
        Great Expectations: Charles Dickens; A Tale of Two Cities: Charles Dickens;
        David Copperfield: Charles Dickens; Nineteen Eighty-Four: George Orwell; Animal Farm: George Orwell;
        The Great Gatsby: F. Scott Fitzgerald; Moby-Dick: Herman Melville; War and Peace: Leo Tolstoy;
        Anna Karenina: Leo Tolstoy; Crime and Punishment: Fyodor Dostoevsky;
        The Brothers Karamazov: Fyodor Dostoevsky; Don Quixote: Miguel de Cervantes; The Odyssey: Homer;
        The Iliad: Homer; The Hobbit: J. R. R. Tolkien; The Lord of the Rings: J. R. R. Tolkien;
        To Kill a Mockingbird: Harper Lee; The Catcher in the Rye: J. D. Salinger; Frankenstein: Mary Shelley;
        Dracula: Bram Stoker; Adventures of Huckleberry Finn: Mark Twain; The Adventures of Tom Sawyer: Mark Twain;
        Ulysses: James Joyce; The Old Man and the Sea: Ernest Hemingway; A Farewell to Arms: Ernest Hemingway;
        Brave New World: Aldous Huxley; The Divine Comedy: Dante Alighieri; Les Miserables: Victor Hugo;
        The Hunchback of Notre-Dame: Victor Hugo; The Count of Monte Cristo: Alexandre Dumas;
        The Three Musketeers: Alexandre Dumas; Jane Eyre: Charlotte Bronte; Wuthering Heights: Emily Bronte;
        On the Origin of Species: Charles Darwin; A Brief History of Time: Stephen Hawking;
        The Shining: Stephen King; Lolita: Vladimir Nabokov; One Hundred Years of Solitude: Gabriel Garcia Marquez;
        The Metamorphosis: Franz Kafka; The Trial: Franz Kafka; Gulliver's Travels: Jonathan Swift;
        Robinson Crusoe: Daniel Defoe; Treasure Island: Robert Louis Stevenson; The Jungle Book: Rudyard Kipling;
        Alice's Adventures in Wonderland: Lewis Carroll; Peter Pan: J. M. Barrie; The Time Machine: H. G. Wells;
        The War of the Worlds: H. G. Wells; Around the World in Eighty Days: Jules Verne;
        The Da Vinci Code: Dan Brown; The Hitchhiker's Guide to the Galaxy: Douglas Adams;
        The Grapes of Wrath: John Steinbeck; Of Mice and Men: John Steinbeck; Fahrenheit 451: Ray Bradbury;
        Lord of the Flies: William Golding; Little Women: Louisa May Alcott; The Prince: Niccolo Machiavelli;
        The Republic: Plato; Leviathan: Thomas Hobbes; The Wealth of Nations: Adam Smith
    """),
    *_table("instrument", """
        Jimi Hendrix: guitar; Eric Clapton: guitar; Jimmy Page: guitar; Keith Richards: guitar;
        Carlos Santana: guitar; George Harrison: guitar; John Lennon: guitar; Andres Segovia: guitar;
        Brian May: guitar; Angus Young: guitar; Stevie Ray Vaughan: guitar; Chuck Berry: guitar;
        Kurt Cobain: guitar; Mark Knopfler: guitar; David Gilmour: guitar; Pete Townshend: guitar;
        Eddie Van Halen: guitar; Louis Armstrong: trumpet; Miles Davis: trumpet; Dizzy Gillespie: trumpet;
        Wynton Marsalis: trumpet; Chet Baker: trumpet; Charlie Parker: saxophone; John Coltrane: saxophone;
        Sonny Rollins: saxophone; Stan Getz: saxophone; Kenny G: saxophone; Ringo Starr: drums; John Bonham: drums;
        Keith Moon: drums; Charlie Watts: drums; Neil Peart: drums; Buddy Rich: drums; Gene Krupa: drums;
        Lars Ulrich: drums; Jaco Pastorius: bass; Geddy Lee: bass; Roger Waters: bass; Yo-Yo Ma: cello;
        Pablo Casals: cello; Jacqueline du Pre: cello; Mstislav Rostropovich: cello; Itzhak Perlman: violin;
        Niccolo Paganini: violin; Joshua Bell: violin; Lang Lang: piano; Vladimir Horowitz: piano;
        Frederic Chopin: piano; Franz Liszt: piano; Glenn Gould: piano; Elton John: piano; Billy Joel: piano;
        Ray Charles: piano; Thelonious Monk: piano; Duke Ellington: piano; Herbie Hancock: piano;
        Jerry Lee Lewis: piano; Benny Goodman: clarinet; Ravi Shankar: sitar; James Galway: flute
    """),
    *_table("sport", """
        Michael Jordan: basketball; LeBron James: basketball; Kobe Bryant: basketball; Magic Johnson: basketball;
        Larry Bird: basketball; Shaquille O'Neal: basketball; Kevin Durant: basketball; Stephen Curry: basketball;
        Charles Barkley: basketball; Dirk Nowitzki: basketball; Kevin Garnett: basketball;
        Dennis Rodman: basketball; Roger Federer: tennis; Rafael Nadal: tennis; Novak Djokovic: tennis;
        Serena Williams: tennis; Venus Williams: tennis; Andy Murray: tennis; Andy Roddick: tennis;
        Pete Sampras: tennis; Andre Agassi: tennis; Steffi Graf: tennis; Maria Sharapova: tennis;
        John McEnroe: tennis; Jimmy Connors: tennis; Bjorn Borg: tennis; Tiger Woods: golf; Jack Nicklaus: golf;
        Arnold Palmer: golf; Phil Mickelson: golf; Rory McIlroy: golf; Lionel Messi: football;
        Cristiano Ronaldo: football; David Beckham: football; Wayne Rooney: football; Michael Owen: football;
        George Best: football; Diego Maradona: football; Zinedine Zidane: football; Thierry Henry: football;
        Johan Cruyff: football; Bobby Moore: football; Eric Cantona: football; Muhammad Ali: boxing;
        Mike Tyson: boxing; George Foreman: boxing; Floyd Mayweather: boxing; Manny Pacquiao: boxing;
        Joe Frazier: boxing; Michael Phelps: swimming; Mark Spitz: swimming; Ian Thorpe: swimming;
        Lance Armstrong: cycling; Eddy Merckx: cycling; Chris Froome: cycling; Babe Ruth: baseball;
        Derek Jeter: baseball; Joe DiMaggio: baseball; Jackie Robinson: baseball; Wayne Gretzky: ice hockey;
        Sidney Crosby: ice hockey; Usain Bolt: athletics; Carl Lewis: athletics; Michael Johnson: athletics;
        Tom Brady: American football; Peyton Manning: American football; Joe Montana: American football;
        Sachin Tendulkar: cricket; Don Bradman: cricket; Garry Kasparov: chess; Magnus Carlsen: chess;
        Bobby Fischer: chess; Michael Schumacher: Formula One; Lewis Hamilton: Formula One;
        Ayrton Senna: Formula One
    """),
    *_table("occupation", """
        Tom Hanks: actor; Tom Cruise: actor; Robin Williams: actor; Dwayne Johnson: actor; Morgan Freeman: actor;
        Denzel Washington: actor; Leonardo DiCaprio: actor; Brad Pitt: actor; Johnny Depp: actor; Will Smith: actor;
        James Dean: actor; Al Pacino: actor; Jack Nicholson: actor; Harrison Ford: actor; Keanu Reeves: actor;
        Marlon Brando: actor; Humphrey Bogart: actor; Paul Newman: actor; James Woods: actor; Kevin Costner: actor;
        Anthony Hopkins: actor; Bruce Willis: actor; Michael Caine: actor; Meryl Streep: actress;
        Emma Watson: actress; Emma Stone: actress; Jennifer Aniston: actress; Jennifer Lawrence: actress;
        Julia Roberts: actress; Audrey Hepburn: actress; Michael Jackson: singer; Frank Sinatra: singer;
        Elvis Presley: singer; Whitney Houston: singer; Tom Jones: singer; Bob Marley: singer; Celine Dion: singer;
        Mariah Carey: singer; Janet Jackson: singer; Justin Bieber: singer; Justin Timberlake: singer;
        Taylor Swift: singer; Bruce Springsteen: singer; Norah Jones: singer; James Brown: singer;
        Freddie Mercury: singer; David Bowie: singer; Pablo Picasso: painter; Vincent van Gogh: painter;
        Claude Monet: painter; Rembrandt van Rijn: painter; Salvador Dali: painter;
        Wolfgang Amadeus Mozart: composer; Ludwig van Beethoven: composer; Johann Sebastian Bach: composer;
        Richard Wagner: composer; Antonio Vivaldi: composer; Albert Einstein: physicist;
        Stephen Hawking: physicist; Niels Bohr: physicist; Richard Feynman: physicist; Neil Armstrong: astronaut;
        Yuri Gagarin: astronaut; Buzz Aldrin: astronaut; Stephen King: writer; Charles Dickens: writer;
        Ernest Hemingway: writer; Mark Twain: writer; Jane Austen: writer; Boris Johnson: politician;
        Margaret Thatcher: politician
    """),
)

PERSON_RELATIONS = ("sport", "instrument", "occupation")


def _families(facts: tuple[Fact, ...]) -> tuple[tuple[str, str], ...]:
    """The two-word person subjects whose first or last name another two-word person subject shares."""
    names = sorted({tuple(f.subject.split()) for f in facts
                    if f.relation in PERSON_RELATIONS and len(f.subject.split()) == 2})
    firsts, lasts = Counter(n[0] for n in names), Counter(n[1] for n in names)
    return tuple(n for n in names if firsts[n[0]] > 1 or lasts[n[1]] > 1)


# person subjects sharing a first or a last name: (first, last) pairs, each a subject in FACTS
FAMILIES: tuple[tuple[str, str], ...] = _families(FACTS)


def prompt_for(fact: Fact, template: str | None = None) -> str:
    """The prompt of ``fact`` in ``template`` (default: its relation's main template)."""
    if fact.relation not in RELATIONS:
        raise ValueError(f"fact {fact} has relation {fact.relation!r}, which has no templates; "
                         f"known relations: {sorted(RELATIONS)}")
    template = RELATIONS[fact.relation].main if template is None else template
    if template.count("{}") != 1:
        raise ValueError(f"a template needs exactly one '{{}}' for the subject, got {template!r}")
    return template.format(fact.subject)

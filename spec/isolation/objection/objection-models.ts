import { Model, type RelationMappings } from 'objection';

/**
 * A fresh set of Objection models (Objection caches table metadata per
 * class, so a spec that needs cold metadata defines its own set). Row mode
 * rows carry `tenant_id`, schema mode rows carry `home` (the schema they
 * were created in): a result proves where each row came from.
 */
export function defineModels() {
  class BaseModel extends Model {}

  class Species extends BaseModel {
    static override tableName = 'species';
    id!: number;
    name!: string;
  }

  class Movie extends BaseModel {
    static override tableName = 'movies';
    id!: number;
    title!: string;
    tenant_id?: string;
    home?: string;
  }

  class Pet extends BaseModel {
    static override tableName = 'pets';
    id!: number;
    name!: string;
    owner_id!: number | null;
    species_id!: number | null;
    tenant_id?: string;
    home?: string;
    owner?: Person;
    species?: Species;

    static override relationMappings = (): RelationMappings => ({
      owner: {
        relation: Model.BelongsToOneRelation,
        modelClass: Person,
        join: { from: 'pets.owner_id', to: 'people.id' },
      },
      species: {
        relation: Model.BelongsToOneRelation,
        modelClass: Species,
        join: { from: 'pets.species_id', to: 'species.id' },
      },
    });
  }

  class Person extends BaseModel {
    static override tableName = 'people';
    id!: number;
    name!: string;
    parent_id!: number | null;
    tenant_id?: string;
    home?: string;
    pets?: Pet[];
    children?: Person[];
    parent?: Person;
    movies?: Movie[];

    static override relationMappings = (): RelationMappings => ({
      pets: {
        relation: Model.HasManyRelation,
        modelClass: Pet,
        join: { from: 'people.id', to: 'pets.owner_id' },
      },
      children: {
        relation: Model.HasManyRelation,
        modelClass: Person,
        join: { from: 'people.id', to: 'people.parent_id' },
      },
      parent: {
        relation: Model.BelongsToOneRelation,
        modelClass: Person,
        join: { from: 'people.parent_id', to: 'people.id' },
      },
      // The join table is a tenant table too: its rows carry the tenant.
      movies: {
        relation: Model.ManyToManyRelation,
        modelClass: Movie,
        join: {
          from: 'people.id',
          through: { from: 'people_movies.person_id', to: 'people_movies.movie_id' },
          to: 'movies.id',
        },
      },
    });
  }

  return { BaseModel, Species, Movie, Pet, Person, all: [Species, Movie, Pet, Person] };
}

export type Models = ReturnType<typeof defineModels>;
